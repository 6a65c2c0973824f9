"""ELSA (ISCA'21): sign-random-projection hashing estimates each score from an angle and a norm.

Queries and keys are hashed to ``hash_bits`` signs of a random Gaussian projection (fixed ``seed``); the
Hamming distance ``h`` between two hashes estimates their angle ``theta ~ pi h / hash_bits`` (SimHash), and
``q.k ~ |q| |k| cos(theta)`` with ELSA's quantised key norm (``norm_bits``). ELSA learns a per-layer
threshold for <1% accuracy loss; ours is calibrated per call for a target ``density``: a pair is kept when
its estimated logit is within ``delta`` of its row's estimated maximum, with ``delta`` the ``density``-quantile
of those gaps over all valid pairs of the call (so every row keeps its estimated maximum).

Trace: prediction = the hash projections (8-bit MACs, ``hash_bits`` per Q and K row), per valid pair an XOR +
popcount over ``hash_bits`` 1-bit lanes and one 16-bit multiply (norm x cosine from a table); selection =
one compare per valid pair; execution at ``formal_bits``.
"""

from __future__ import annotations

import math

import torch
from pydantic import Field

from ..core.quant import quantize_symmetric
from ..core.result import SparseResult
from ..core.shape import valid_mask
from ..core.workload import Per
from .common import run_selector
from .registry import AttentionCall, MethodParams, register

CHUNK = 128


class ElsaParams(MethodParams):
    density: float = Field(0.25, gt=0, le=1, description="target fraction of valid pairs kept (calibrated)")
    hash_bits: int = Field(64, ge=1, le=1024, description="sign-projection hash length")
    norm_bits: int = Field(8, ge=2, le=16, description="width of the stored key norms")
    seed: int = Field(0, ge=0, description="seed of the random projection")
    formal_bits: int = Field(16, ge=4, le=32, description="operand width of the execution phase")


class Hashes:
    """Sign hashes (as +-1) and norms of all queries and keys, computed once per call; the key norms are
    quantised over the whole key set, as ELSA stores them."""

    def __init__(self, call: AttentionCall, p: ElsaParams) -> None:
        g = torch.Generator().manual_seed(p.seed)
        proj = torch.randn(call.shape.head_dim, p.hash_bits, generator=g).to(call.q.device)
        group = call.shape.group_size
        self.q_sign = ((call.q.float() @ proj) > 0).float().mul_(2).sub_(1)  # [B, H, Nq, bits]
        self.k_sign = ((call.k.float() @ proj) > 0).float().mul_(2).sub_(1).repeat_interleave(group, dim=1)
        self.q_norm = call.q.float().norm(dim=-1, keepdim=True)
        knorm = quantize_symmetric(call.k.float().norm(dim=-1, keepdim=True), p.norm_bits).dequantize().float()
        self.k_norm = knorm.repeat_interleave(group, dim=1).transpose(-1, -2)  # [B, H, 1, Nk]
        self.bits, self.scale = p.hash_bits, call.scale

    def logits(self, row0: int, rows: int, width: int) -> torch.Tensor:
        """``|q| |k|_quantised cos(pi * hamming / bits) * scale`` for a chunk of rows over keys ``:width``."""
        agree_minus_differ = self.q_sign[:, :, row0 : row0 + rows] @ self.k_sign[:, :, :width].transpose(-1, -2)
        hamming = (self.bits - agree_minus_differ) / 2
        theta = math.pi * hamming / self.bits
        return self.q_norm[:, :, row0 : row0 + rows] * self.k_norm[..., :width] * torch.cos(theta) * self.scale


@register("elsa", ElsaParams, "ELSA: sign-random-projection angle x key norm, threshold for a target density")
def elsa(call: AttentionCall, p: ElsaParams) -> SparseResult:
    shape = call.shape
    full = valid_mask(shape.q_len, shape.k_len, shape.causal, call.q.device)
    hashes = Hashes(call, p)
    # calibration pass: the density-quantile of (row estimated max - estimate) over all valid pairs
    gaps: dict[int, torch.Tensor] = {}
    for row0 in range(0, shape.q_len, CHUNK):
        rows = min(CHUNK, shape.q_len - row0)
        width = shape.k_len - shape.q_len + row0 + rows if shape.causal else shape.k_len
        est = hashes.logits(row0, rows, width)
        valid = full[row0 : row0 + rows, :width]
        gaps[row0] = est.masked_fill(~valid, float("-inf")).amax(dim=-1, keepdim=True) - est
    allgaps = torch.cat([g[full[r0 : r0 + g.shape[2], : g.shape[3]].expand_as(g)] for r0, g in gaps.items()])
    k = max(1, min(allgaps.numel(), math.ceil(p.density * allgaps.numel())))
    delta = float(torch.kthvalue(allgaps, k).values) if k < allgaps.numel() else float("inf")
    del allgaps

    def select(scores: torch.Tensor, valid: torch.Tensor, row0: int) -> torch.Tensor:
        return valid & (gaps.pop(row0) <= delta)

    result, w = run_selector(call, select, "elsa", p, p.formal_bits, chunk_rows=CHUNK, delta=delta)
    valid = float(shape.valid_pairs)
    q_rows = shape.batch * shape.heads * shape.q_len
    k_rows = shape.batch * shape.kv_heads * shape.k_len
    w.add("predict", "mac", 8, (q_rows + k_rows) * shape.head_dim * p.hash_bits, Per.ROW_DIM)  # Q and K hashes
    w.add("predict", "add", 1, valid * p.hash_bits, Per.PAIR)  # XOR + popcount lanes
    w.add("predict", "mul", 16, valid, Per.PAIR)
    w.add("select", "compare", 16, valid, Per.PAIR)
    w.meta["note"] = "threshold calibrated per call for the target density (ELSA learns one per layer)"
    return result
