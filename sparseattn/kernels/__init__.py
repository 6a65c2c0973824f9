"""Triton kernels for predicted block-sparse attention, and the FlexAttention path they are measured against.

Pure Triton + PyTorch, no compile step beyond Triton's JIT. The truth they are tested against, pair for pair,
is the ``star_block`` reference (:mod:`sparseattn.methods.blocksparse`); ``sparseattn.attention(...,
method="star_gpu")`` runs them (CUDA tensors, or CPU tensors with ``TRITON_INTERPRET=1`` set before import).

=============================  ==========================================================================
module                         what
=============================  ==========================================================================
``predict``                    block prediction kernels (dlzs / pade per-token scoring, pooled blocks)
``select``                     block selection kernel: sorted compact lists, SADS segments, mass budget
``attention``                  block-sparse flash attention forward, sorted updating, rescale counting,
                               GQA packing and split-K decode
``ops``                        the kernels as ``torch.library.custom_op`` (``sparseattn::...``)
``star``                       the pipeline: :func:`star_attention`, :func:`star_forward`, ``star_gpu``
``flex``                       ``BlockSelection`` <-> FlexAttention ``BlockMask``; any method on FlexAttention
=============================  ==========================================================================

Names are imported lazily, so ``import sparseattn.kernels`` needs neither triton nor a GPU.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "star_attention": "star",
    "star_forward": "star",
    "star_params": "star",
    "BlockSparseResult": "star",
    "block_sparse_attention": "attention",
    "token_block_scores": "predict",
    "pooled_block_scores": "predict",
    "select_blocks": "select",
    "to_block_mask": "flex",
    "from_block_mask": "flex",
    "flex_block_attention": "flex",
    "KernelUnavailableError": "_runtime",
    "interpreting": "_runtime",
    "triton_version": "_runtime",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
