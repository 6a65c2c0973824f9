"""Any method's selection on a GPU through PyTorch FlexAttention: :class:`~sparseattn.core.selection.BlockSelection`
<-> ``torch.nn.attention.flex_attention.BlockMask``, and attention over a selection's blocks.

``sparseattn.select(q, k, method=...)`` gives every reference method's kept pairs; ``Selection.blocks(bq, bk)``
(a key block is kept when any of its pairs is) gives the ``(kv_num_blocks, kv_indices)`` lists that
``BlockMask.from_kv_blocks`` takes, so SOFA, PADE and the baselines run at block granularity on FlexAttention
where no dedicated kernel exists -- and the ``star_gpu`` kernel is measured against exactly this path on exactly
the same blocks (``benchmarks/bench_gpu.py``). The causal diagonal inside blocks is FlexAttention's ``mask_mod``
(queries are the last ``q_len`` positions); everything else about the selection is the block lists.

FlexAttention lives here, not in ``core``: it is a GPU execution backend.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import torch

from ..core.errors import InvalidInputError
from ..core.selection import BlockSelection, Selection


def _flex() -> Any:
    try:
        from torch.nn.attention import flex_attention as fa
    except ImportError as err:  # torch < 2.5
        raise InvalidInputError("FlexAttention needs torch >= 2.5") from err
    return fa


def block_mask_mod(kept: torch.Tensor, block_q: int, block_k: int, q_len: int, k_len: int, causal: bool) -> Any:
    """FlexAttention ``mask_mod`` of a block selection: pair ``(q, kv)`` is in when its block is kept (and, causal,
    ``kv <= q + k_len - q_len``: queries are the last positions). Compiled FlexAttention evaluates it only in the
    partial blocks; eager FlexAttention (which ignores the block lists) needs it everywhere."""
    offset = k_len - q_len

    def mask_mod(b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
        inside = kept[b, h, q_idx // block_q, kv_idx // block_k]
        return inside & (kv_idx <= q_idx + offset) if causal else inside

    return mask_mod


def _partition(order: torch.Tensor, num: torch.Tensor, part: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The kept blocks of ``(num, order)`` for which ``part`` holds, in the same order (then the rest)."""
    rank = torch.arange(order.shape[-1], device=order.device)
    take = (rank < num.unsqueeze(-1)) & part.gather(-1, order)
    perm = torch.argsort((~take).to(torch.int8), dim=-1, stable=True)
    return take.sum(dim=-1).to(torch.int32), order.gather(-1, perm).to(torch.int32)


def to_block_mask(sel: BlockSelection, causal: bool, heads: int | None = None) -> Any:
    """The ``BlockMask`` of ``sel`` (``BLOCK_SIZE = (block_q, block_k)``, ``seq_lengths = (q_len, k_len)``).

    Kept blocks that cross the causal diagonal or the end of the keys are *partial* blocks (``kv_num_blocks``,
    ``kv_indices``, masked by :func:`block_mask_mod`); the others are *full* blocks (``full_kv_*``, no mask work),
    each list in the selection's visiting order. ``heads``: the query heads; a selection shared by GQA groups
    (fewer heads) is repeated to them.
    """
    fa = _flex()
    num, order = sel.kv_num_blocks, sel.kv_indices.long()
    if heads is not None and num.shape[1] != heads:
        if heads % num.shape[1]:
            raise InvalidInputError(f"cannot spread a selection of {num.shape[1]} heads over {heads} heads")
        rep = heads // num.shape[1]
        num, order = num.repeat_interleave(rep, dim=1), order.repeat_interleave(rep, dim=1)
    tq, tk = order.shape[-2:]
    kept = _kept(num, order, tk)
    c = torch.arange(tk, device=order.device)
    last_key = torch.clamp((c + 1) * sel.block_k, max=sel.k_len) - 1
    partial = (last_key >= sel.k_len - 1) & (sel.k_len % sel.block_k != 0)
    partial = partial[None, :].expand(tq, tk)
    if causal:
        first_q = sel.k_len - sel.q_len + torch.arange(tq, device=order.device) * sel.block_q
        partial = partial | (last_key[None, :] > first_q[:, None])
    part_num, part_idx = _partition(order, num, partial.expand_as(kept))
    full_num, full_idx = _partition(order, num, ~partial.expand_as(kept))
    mask_mod = block_mask_mod(kept, sel.block_q, sel.block_k, sel.q_len, sel.k_len, causal)
    return fa.BlockMask.from_kv_blocks(
        part_num, part_idx, full_num, full_idx, BLOCK_SIZE=(sel.block_q, sel.block_k), mask_mod=mask_mod,
        seq_lengths=(sel.q_len, sel.k_len),
    )


def _kept(num: torch.Tensor, idx: torch.Tensor, tk: int) -> torch.Tensor:
    rank = torch.arange(idx.shape[-1], device=idx.device)
    kept = rank < num.unsqueeze(-1)
    out = torch.zeros((*idx.shape[:-1], tk), dtype=torch.bool, device=idx.device)
    return out.scatter_(-1, idx.long().clamp(max=tk - 1), kept & (idx < tk))


def from_block_mask(mask: Any) -> BlockSelection:
    """The kept blocks of a ``BlockMask`` (partial and full blocks alike) as a :class:`BlockSelection` in key
    order. Its ``mask_mod`` (what happens inside a block) is not part of a selection and is dropped."""
    bq, bk = mask.BLOCK_SIZE
    q_len, k_len = mask.seq_lengths
    tk = -(-k_len // bk)
    kept = _kept(mask.kv_num_blocks, mask.kv_indices, tk)
    if mask.full_kv_num_blocks is not None:
        kept |= _kept(mask.full_kv_num_blocks, mask.full_kv_indices, tk)
    order = torch.argsort((~kept).to(torch.int8), dim=-1, stable=True)
    return BlockSelection(bq, bk, q_len, k_len, kept.sum(dim=-1).to(torch.int32), order.to(torch.int32))


@cache
def compiled_flex_attention() -> Any:
    """``torch.compile(flex_attention)`` (compiled once per process; FlexAttention is only fast compiled)."""
    return torch.compile(_flex().flex_attention, dynamic=False)


def flex_block_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, selection: BlockSelection | Selection, causal: bool,
    scale: float | None = None, *, block_q: int = 128, block_k: int = 128, compiled: bool | None = None,
) -> torch.Tensor:
    """FlexAttention over the kept blocks of ``selection`` (a :class:`Selection` is first cut into ``block_q x
    block_k`` blocks). ``compiled`` defaults to ``q.is_cuda``; eager FlexAttention (CPU) is a slow reference."""
    sel = selection.blocks(block_q, block_k) if isinstance(selection, Selection) else selection
    if (sel.q_len, sel.k_len) != (q.shape[2], k.shape[2]):
        raise InvalidInputError(f"selection is for lengths {(sel.q_len, sel.k_len)}, got {(q.shape[2], k.shape[2])}")
    mask = to_block_mask(sel, causal, heads=q.shape[1])
    fn = compiled_flex_attention() if (q.is_cuda if compiled is None else compiled) else _flex().flex_attention
    return fn(q, k, v, block_mask=mask, scale=scale, enable_gqa=q.shape[1] != k.shape[1])
