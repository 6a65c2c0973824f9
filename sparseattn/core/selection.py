"""A method's selection on its own: which (query, key) pairs it keeps, apart from how they are computed.

FlexAttention separates the two (a ``BlockMask`` says which blocks run, the kernel computes them); so does
sparseattn. :func:`~sparseattn.select` returns a :class:`Selection` (a pair mask, and the predicted scores
when the method has them); :meth:`Selection.blocks` turns it into a :class:`BlockSelection`, the compact form a
block-sparse kernel consumes: per query block, the number of kept key blocks and their indices, in the order
a sorted-updating kernel visits them (descending predicted block score, SOFA's SU-FA order) or in key order.
A key block is kept for a query block when any of its pairs is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .errors import InvalidParameterError
from .shape import Shape


@dataclass
class BlockSelection:
    """Kept key blocks per query block, FlexAttention's ``from_kv_blocks`` layout.

    Attributes:
        block_q, block_k: block sizes in tokens.
        q_len, k_len: sequence lengths (the last blocks may be partial).
        kv_num_blocks: int32 ``[B, H, Tq]``: kept key blocks of each query block.
        kv_indices: int32 ``[B, H, Tq, Tk]``: their indices first (in visiting order), then the unkept ones.
    """

    block_q: int
    block_k: int
    q_len: int
    k_len: int
    kv_num_blocks: torch.Tensor
    kv_indices: torch.Tensor

    @property
    def density(self) -> float:
        """Kept blocks / all blocks (over batch and heads)."""
        return float(self.kv_num_blocks.sum()) / self.kv_indices.numel()

    def mask(self) -> torch.Tensor:
        """The block mask expanded to pairs, bool ``[B, H, q_len, k_len]`` (every pair of a kept block)."""
        b, h, tq, tk = self.kv_indices.shape
        rank = torch.arange(tk, device=self.kv_indices.device)
        kept = rank < self.kv_num_blocks.unsqueeze(-1)
        blocks = torch.zeros(b, h, tq, tk, dtype=torch.bool, device=self.kv_indices.device)
        blocks.scatter_(-1, self.kv_indices.long(), kept)
        full = blocks.repeat_interleave(self.block_q, dim=2).repeat_interleave(self.block_k, dim=3)
        return full[:, :, : self.q_len, : self.k_len]


@dataclass
class Selection:
    """The pairs a method keeps on one call.

    Attributes:
        keep: bool ``[B, H, Nq, Nk]``.
        score: predicted importance ``[B, H, Nq, Nk]`` (higher is more important; ``-inf`` where not kept), or
            ``None`` when the method's prediction is not a score per pair.
        shape: the call's :class:`~sparseattn.core.shape.Shape`.
        method: the method's name.
    """

    keep: torch.Tensor
    score: torch.Tensor | None
    shape: Shape
    method: str

    @property
    def density(self) -> float:
        """Kept / valid pairs."""
        return int(torch.count_nonzero(self.keep)) / self.shape.valid_pairs

    def blocks(self, block_q: int = 128, block_k: int = 128, order: str = "score") -> BlockSelection:
        """The selection at block granularity (a key block is kept when any of its pairs is).

        ``order="score"`` lists each query block's kept key blocks by descending maximum predicted score (key
        order where the method has no scores); ``order="index"`` in key order.
        """
        for name, v in (("block_q", block_q), ("block_k", block_k)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise InvalidParameterError(f"{name} must be a positive int, got {v!r}")
        if order not in ("score", "index"):
            raise InvalidParameterError(f"order must be 'score' or 'index', got {order!r}")
        nq, nk = self.keep.shape[-2:]
        tk = math.ceil(nk / block_k)
        kept = _block_reduce(self.keep.to(torch.uint8), block_q, block_k, 0).bool()
        if order == "score" and self.score is not None:
            rank = _block_reduce(self.score, block_q, block_k, float("-inf")).masked_fill(~kept, float("-inf"))
        else:  # key order: earlier blocks rank higher
            rank = (tk - torch.arange(tk, device=kept.device, dtype=torch.float32)).expand(kept.shape)
            rank = rank.masked_fill(~kept, float("-inf"))
        # kept blocks first, by rank; ties (and unkept blocks) by index
        key = torch.where(kept, rank, torch.full_like(rank, float("-inf")))
        idx = torch.sort(key, dim=-1, descending=True, stable=True).indices
        return BlockSelection(
            block_q=block_q, block_k=block_k, q_len=nq, k_len=nk,
            kv_num_blocks=kept.sum(dim=-1).to(torch.int32), kv_indices=idx.to(torch.int32),
        )


def _block_reduce(x: torch.Tensor, bq: int, bk: int, pad: float) -> torch.Tensor:
    """Maximum over ``bq x bk`` blocks of ``[..., Nq, Nk]`` (padded with ``pad``)."""
    nq, nk = x.shape[-2:]
    tq, tk = math.ceil(nq / bq), math.ceil(nk / bk)
    padded = x.new_full((*x.shape[:-2], tq * bq, tk * bk), pad)
    padded[..., :nq, :nk] = x
    return padded.view(*x.shape[:-2], tq, bq, tk, bk).amax(dim=(-3, -1))
