"""ELSA (ISCA'21): sign-random-projection hashing estimates each score from an angle and a norm.

Queries and keys are hashed to ``hash_bits`` signs of a random Gaussian projection (fixed ``seed``); the
Hamming distance ``h`` between two hashes estimates their angle ``theta ~ pi h / hash_bits`` (SimHash), and
``q.k ~ |q| |k| cos(theta)`` with ELSA's quantised key norm (``norm_bits``). ELSA learns a per-layer
threshold for <1% accuracy loss; ours is calibrated per call for a target ``density``: a pair is kept when
its estimated logit is within ``delta`` of its row's estimated maximum, with ``delta`` the ``density``-quantile
of those gaps over all valid pairs of the call (so every row keeps its estimated maximum).

Trace: prediction = the hash projections (``projection_bits`` (8) MACs, ``hash_bits`` per Q and K row), per
valid pair an XOR + popcount over ``hash_bits`` 1-bit lanes and one ``aux_bits`` multiply (norm x cosine from a
table); selection = one compare per valid pair; execution at ``formal_bits``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from pydantic import Field

from ..core.call import AttentionCall
from ..core.driver import RowBlock, Tally, row_blocks
from ..core.quant import quantize_symmetric
from ..core.workload import Per, Workload
from .common import NEG_INF, Baseline, BaselineParams
from .registry import Knob, register

CHUNK = 128


class ElsaParams(BaselineParams):
    density: float = Field(0.25, gt=0, le=1, description="target fraction of valid pairs kept (calibrated)")
    hash_bits: int = Field(64, ge=1, le=1024, description="sign-projection hash length")
    norm_bits: int = Field(8, ge=2, le=16, description="width of the stored key norms")
    projection_bits: int = Field(8, ge=2, le=32, description="width of the hash projection MACs")
    seed: int = Field(0, ge=0, description="seed of the random projection")


class Hashes:
    """Sign hashes (as +-1) and norms of all queries and keys, computed once per call; the key norms are
    quantised over the whole key set, as ELSA stores them."""

    def __init__(self, call: AttentionCall, p: ElsaParams) -> None:
        g = torch.Generator().manual_seed(p.seed)
        proj = torch.randn(call.shape.head_dim, p.hash_bits, generator=g).to(call.q.device)
        group = call.shape.group_size
        self.q_sign = ((call.q.float() @ proj) > 0).float().mul_(2).sub_(1)  # [B, H, Nq, bits]
        self.k_sign = ((call.k.float() @ proj) > 0).float().mul_(2).sub_(1).repeat_interleave(group, dim=1)
        self.q_norm = call.q.double().norm(dim=-1, keepdim=True).float()  # float64: no overflow in the squares
        k_norm = call.k.double().norm(dim=-1, keepdim=True).float()
        knorm = quantize_symmetric(k_norm, p.norm_bits).dequantize().float()
        self.k_norm = knorm.repeat_interleave(group, dim=1).transpose(-1, -2)  # [B, H, 1, Nk]
        self.bits, self.scale = p.hash_bits, call.scale

    def logits(self, row0: int, rows: int, width: int) -> torch.Tensor:
        """``|q| |k|_quantised cos(pi * hamming / bits) * scale`` for a chunk of rows over keys ``:width``."""
        agree_minus_differ = self.q_sign[:, :, row0 : row0 + rows] @ self.k_sign[:, :, :width].transpose(-1, -2)
        hamming = (self.bits - agree_minus_differ) / 2
        theta = math.pi * hamming / self.bits
        return self.q_norm[:, :, row0 : row0 + rows] * self.k_norm[..., :width] * torch.cos(theta) * self.scale


@dataclass
class _Calibrated:
    gaps: dict[int, torch.Tensor]  # per block start row: (row's estimated max - estimate), [B, H, rows, width]
    delta: float  # the density-quantile of the valid gaps


def calibrate(call: AttentionCall, hashes: Hashes, density: float) -> _Calibrated:
    """Gaps of every block and the ``density``-quantile of the valid ones (a pair is kept when its gap <= it)."""
    gaps, valid_gaps = {}, []
    for block in row_blocks(call, CHUNK):
        est = hashes.logits(block.row0, block.rows, block.width)
        gap = est.masked_fill(~block.valid, NEG_INF).amax(dim=-1, keepdim=True) - est
        gaps[block.row0] = gap
        valid_gaps.append(gap[block.valid.expand_as(gap)])
    allgaps = torch.cat(valid_gaps)
    k = max(1, min(allgaps.numel(), math.ceil(density * allgaps.numel())))
    delta = float(torch.kthvalue(allgaps, k).values) if k < allgaps.numel() else float("inf")
    return _Calibrated(gaps, delta)


@register("elsa", ElsaParams, "ELSA: sign-random-projection angle x key norm, threshold for a target density",
          (Knob("density", 0.01, 1.0, "up", "log", source="the parameter's range (0, 1]"),))
class Elsa(Baseline):
    def block_rows(self, call: AttentionCall) -> int:
        return CHUNK

    def prepare(self, call: AttentionCall) -> _Calibrated:
        return calibrate(call, Hashes(call, self.p), self.p.density)

    def predict(self, cal: _Calibrated, block: RowBlock, tally: Tally) -> torch.Tensor:
        return cal.gaps.pop(block.row0)

    def select(self, cal: _Calibrated, block: RowBlock, gap: torch.Tensor, tally: Tally) -> torch.Tensor:
        return block.valid & (gap <= cal.delta)

    def score(self, gap: torch.Tensor) -> torch.Tensor:
        return -gap

    def count_prediction(self, w: Workload, cal: _Calibrated, call: AttentionCall, tally: Tally) -> None:
        shape, p = call.shape, self.p
        valid = float(shape.valid_pairs)
        q_rows = shape.batch * shape.heads * shape.q_len
        k_rows = shape.batch * shape.kv_heads * shape.k_len
        macs = (q_rows + k_rows) * shape.head_dim * p.hash_bits
        w.add("predict", "mac", p.projection_bits, macs, Per.ROW_DIM)  # Q and K hashes
        w.add("predict", "add", 1, valid * p.hash_bits, Per.PAIR)  # XOR + popcount lanes
        w.add("predict", "mul", p.aux_bits, valid, Per.PAIR)
        w.add("select", "compare", p.aux_bits, valid, Per.PAIR)
        w.meta["delta"] = cal.delta
        w.meta["note"] = "threshold calibrated per call for the target density (ELSA learns one per layer)"
