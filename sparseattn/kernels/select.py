"""Block selection kernel: per query block, the kept key blocks as a compact list sorted by predicted score.

Bit for bit :func:`sparseattn.methods.blocksparse.select_blocks` (the rules are described there). One program
per (query block, selection head) sorts its row of block scores once: each float score becomes an order-preserving
integer key with the block index in the low 32 bits (ties: lower index first), one ``tl.sort`` of int64 keys
(a bitonic network, like SOFA's sorting cores), then, in sorted order:

* ratio mode: a block is kept when forced (sink, diagonal, local window) or when its rank among the non-forced
  valid blocks *of its SADS segment* (a masked cumulative sum per segment) is within that segment's picks;
* mass mode: when forced, or when the softmax mass of the blocks before it is below ``mass`` (float64 sums).

Kept blocks are compacted to the front of the output row by a cumulative sum (then the unkept ones), so no
dense mask is materialised: the output is FlexAttention's ``(kv_num_blocks, kv_indices)`` layout.
"""

from __future__ import annotations

import torch

from ..core.errors import InvalidInputError
from ._jit import tl, triton
from ._runtime import check_dtype, check_rank, next_pow2


@triton.jit
def _select_kernel(
    S, NVALID, WLO, WHI, PICKS, MASS, NUM, IDX,
    ssb, ssh, ssa, spa, snb, snh, sib, sih, sia,
    HS, TK, SEG_LEN, NSEG,
    TKP: tl.constexpr, KEEP_FIRST: tl.constexpr, MASS_MODE: tl.constexpr,
):
    a = tl.program_id(0)
    b = tl.program_id(1) // HS
    h = tl.program_id(1) % HS
    c = tl.arange(0, TKP)
    s = tl.load(S + b * ssb + h * ssh + a * ssa + c, mask=c < TK, other=float("-inf"))
    bits = s.to(tl.int32, bitcast=True)
    key32 = tl.where(s == 0.0, 0, tl.where(bits >= 0, bits, bits ^ 0x7FFFFFFF))
    key = (key32.to(tl.int64) << 32) | (TKP - 1 - c).to(tl.int64)
    srt = tl.sort(key, descending=True)
    idx = (TKP - 1) - (srt & 0xFFFFFFFF).to(tl.int32)
    valid = idx < tl.load(NVALID + a)
    forced = (idx >= tl.load(WLO + a)) & (idx <= tl.load(WHI + a))
    if KEEP_FIRST:
        forced = forced | (idx == 0)
    forced = forced & valid
    if MASS_MODE:
        hi = (srt >> 32).to(tl.int32)
        sc = tl.where(hi >= 0, hi, hi ^ 0x7FFFFFFF).to(tl.float32, bitcast=True)
        top = tl.max(tl.where(valid, sc, float("-inf")), axis=0)
        p = tl.where(valid, tl.exp(sc - top), 0.0).to(tl.float64)
        before = tl.cumsum(p, axis=0) - p
        kept = forced | (valid & (before < tl.load(MASS) * tl.sum(p, axis=0)))
    else:
        free = valid & (forced == 0)
        seg = idx // SEG_LEN
        kept = forced
        for sg in range(0, NSEG):
            m = free & (seg == sg)
            rank = tl.cumsum(m.to(tl.int32), axis=0)
            kept = kept | (m & (rank <= tl.load(PICKS + a * spa + sg)))
    k32 = kept.to(tl.int32)
    n = tl.sum(k32, axis=0)
    slot = tl.where(kept, tl.cumsum(k32, axis=0) - 1, n + tl.cumsum(1 - k32, axis=0) - 1)
    tl.store(IDX + b * sib + h * sih + a * sia + slot, idx, mask=slot < TK)
    tl.store(NUM + b * snb + h * snh + a, n)


def select_blocks(
    scores: torch.Tensor, n_valid: torch.Tensor, wlo: torch.Tensor, whi: torch.Tensor, keep_first: bool,
    picks: torch.Tensor | None, seg_len: int, mass: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Select from ``scores`` float32 ``[B, Hs, Tq, Tk]`` (``-inf``: unseen). Per query block: ``n_valid`` (its valid
    key blocks are ``0 .. n_valid - 1``), the forced window ``[wlo, whi]`` (all ``[Tq]``), and either ``picks``
    int ``[Tq, segments]`` (ratio mode, SADS segments of ``seg_len`` blocks) or ``mass``.

    Returns ``(kv_num_blocks int32 [B, Hs, Tq], kv_indices int32 [B, Hs, Tq, Tk])``.
    """
    check_rank("scores", scores, (None, None, None, None))
    check_dtype("scores", scores, (torch.float32,))
    b, hs, tq, tk = scores.shape
    for name, x in (("n_valid", n_valid), ("wlo", wlo), ("whi", whi)):
        check_rank(name, x, (tq,))
    if (picks is None) == (mass is None):
        raise InvalidInputError("give either picks (ratio mode) or mass")
    if tk > 1 << 16:
        raise InvalidInputError(f"at most 65536 key blocks per row, got {tk}")
    dev = scores.device
    i32 = {"device": dev, "dtype": torch.int32}
    num = torch.empty((b, hs, tq), **i32)
    idx = torch.empty((b, hs, tq, tk), **i32)
    if picks is None:
        picks_t = torch.zeros((tq, 1), **i32)
        mass_t = torch.tensor([float(mass)], dtype=torch.float64, device=dev)
    else:
        check_rank("picks", picks, (tq, None))
        picks_t = picks.to(**i32).contiguous()
        mass_t = torch.zeros(1, dtype=torch.float64, device=dev)
    s = scores.contiguous()
    nseg = picks_t.shape[1]
    _select_kernel[(tq, b * hs)](
        s, n_valid.to(**i32).contiguous(), wlo.to(**i32).contiguous(), whi.to(**i32).contiguous(), picks_t,
        mass_t, num, idx,
        s.stride(0), s.stride(1), s.stride(2), picks_t.stride(0), num.stride(0), num.stride(1),
        idx.stride(0), idx.stride(1), idx.stride(2),
        hs, tk, seg_len, nseg,
        TKP=max(16, next_pow2(tk)), KEEP_FIRST=keep_first, MASS_MODE=picks is None,
    )
    return num, idx
