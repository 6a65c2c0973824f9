"""The kernels as ``torch.library.custom_op``s (namespace ``sparseattn``), each with a fake (meta) implementation,
so ``torch.compile`` traces through them without graph breaks and never looks inside Triton.

=====================================  ===============================================================
op                                     kernel
=====================================  ===============================================================
``sparseattn::token_block_scores``     :func:`sparseattn.kernels.predict.token_block_scores` (dlzs, pade)
``sparseattn::pooled_block_scores``    :func:`sparseattn.kernels.predict.pooled_block_scores`
``sparseattn::select_blocks``          :func:`sparseattn.kernels.select.select_blocks`
``sparseattn::block_sparse_attention`` :func:`sparseattn.kernels.attention.block_sparse_attention`
=====================================  ===============================================================
"""

from __future__ import annotations

import math

import torch

from . import attention, predict, select


@torch.library.custom_op("sparseattn::token_block_scores", mutates_args=())
def token_block_scores(
    qc: torch.Tensor, kc: torch.Tensor, factor: torch.Tensor, bonus: torch.Tensor, last_pos: torch.Tensor,
    block_k: int, drop: int, group_shared: bool,
) -> torch.Tensor:
    return predict.token_block_scores(qc, kc, factor, bonus, last_pos, block_k, drop, group_shared)


@token_block_scores.register_fake
def _(qc, kc, factor, bonus, last_pos, block_k, drop, group_shared):
    b, h, tq, _ = qc.shape
    return qc.new_empty((b, kc.shape[1] if group_shared else h, tq, math.ceil(kc.shape[2] / block_k)),
                        dtype=torch.float32)


@torch.library.custom_op("sparseattn::pooled_block_scores", mutates_args=())
def pooled_block_scores(
    qc: torch.Tensor, kc: torch.Tensor, factor: torch.Tensor, n_valid: torch.Tensor, group_shared: bool,
) -> torch.Tensor:
    return predict.pooled_block_scores(qc, kc, factor, n_valid, group_shared)


@pooled_block_scores.register_fake
def _(qc, kc, factor, n_valid, group_shared):
    b, h, tq, _ = qc.shape
    return qc.new_empty((b, kc.shape[1] if group_shared else h, tq, kc.shape[2]), dtype=torch.float32)


@torch.library.custom_op("sparseattn::select_blocks", mutates_args=())
def select_blocks(
    scores: torch.Tensor, n_valid: torch.Tensor, wlo: torch.Tensor, whi: torch.Tensor, keep_first: bool,
    picks: torch.Tensor | None, seg_len: int, mass: float | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    return select.select_blocks(scores, n_valid, wlo, whi, keep_first, picks, seg_len, mass)


@select_blocks.register_fake
def _(scores, n_valid, wlo, whi, keep_first, picks, seg_len, mass):
    b, hs, tq, tk = scores.shape
    return scores.new_empty((b, hs, tq), dtype=torch.int32), scores.new_empty((b, hs, tq, tk), dtype=torch.int32)


@torch.library.custom_op("sparseattn::block_sparse_attention", mutates_args=())
def block_sparse_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, kv_num_blocks: torch.Tensor, kv_indices: torch.Tensor,
    block_q: int, block_k: int, causal: bool, scale: float, splits: int, count_rescales: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    out, resc = attention.block_sparse_attention(
        q, k, v, kv_num_blocks, kv_indices, block_q, block_k, causal, scale, splits=splits,
        count_rescales=count_rescales,
    )
    return out, (resc if resc is not None else q.new_zeros((0,), dtype=torch.int32))


@block_sparse_attention.register_fake
def _(q, k, v, kv_num_blocks, kv_indices, block_q, block_k, causal, scale, splits, count_rescales):
    shape = q.shape[:3] if count_rescales else (0,)
    return torch.empty_like(q), q.new_empty(shape, dtype=torch.int32)
