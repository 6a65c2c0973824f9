"""Block prediction kernels: one importance score per (query block, key block), bit for bit the reference's
(:func:`sparseattn.methods.blocksparse.predict_block_scores`; the predictors are described there).

The prologue (pooling each query block to its mean, quantising to ``bits``-bit codes with one scale per head,
the log-domain snap of ``dlzs``) is :func:`~sparseattn.methods.blocksparse.block_codes`, in PyTorch: a pass over
Q (and K) that is a small fraction of the attention it steers. The kernels do the part that scales with the
sequence:

* :func:`token_block_scores` (``dlzs`` and ``pade``): each pooled query code against every key code its block
  may see, maximum over each key block, plus pade's interval bonus, times the per-head factor. INT8 tensor-core
  MACs (a ``dlzs`` operand is ``+-2^e``: the product is the shift SOFA's hardware does); pade's truncation to
  the top bit planes happens on the loaded keys (``(k >> drop) << drop``). ``Tq x Nk x D`` MACs per head: 1/128
  of ``QK^T`` at 128-query blocks.
* :func:`pooled_block_scores` (``pooled``): pooled query codes against pooled key codes, ``Tq x Tk x D``.

A program owns ``ROWS`` rows of (query block, head of the group); with ``group_shared`` the heads of a group sit
next to each other (``GP`` rows per query block) and the maximum over them is taken before the store, so the
output has one row per KV head. Integer dot products are exact, converted to float32 and scaled as the reference
does, so scores (and hence selections) are identical.
"""

from __future__ import annotations

import torch

from ..core.errors import InvalidInputError
from ._jit import INTERPRETED, tl, triton
from ._runtime import check_dtype, check_rank, next_pow2

ROWS = 32 if INTERPRETED else 128  # rows of (query block, head) per program: each key tile is read once per ROWS


@triton.jit
def _token_scores_kernel(
    QC, KC, F, BONUS, LAST, OUT,
    sqb, sqh, sqa, skb, skh, skn, sfb, sbb, sbh, sob, soh, soa,
    HKV, TQ, NK, TK, G,
    D: tl.constexpr, BK: tl.constexpr, ROWS: tl.constexpr, GP: tl.constexpr, SHARED: tl.constexpr,
    DROP: tl.constexpr,
):
    pid_r = tl.program_id(0)
    b = tl.program_id(1) // HKV
    hk = tl.program_id(1) % HKV
    r = pid_r * ROWS + tl.arange(0, ROWS)
    if SHARED:
        a, hq = r // GP, r % GP
    else:
        a, hq = r % TQ, r // TQ
    ok = (hq < G) & (a < TQ)
    h = hk * G + hq
    d = tl.arange(0, D)
    q = tl.load(QC + b * sqb + h[:, None] * sqh + a[:, None] * sqa + d[None, :], mask=ok[:, None], other=0)
    last = tl.load(LAST + a, mask=ok, other=-1)
    f = tl.load(F + b * sfb + h, mask=ok, other=1.0)
    bonus = tl.load(BONUS + b * sbb + h * sbh + a, mask=ok, other=0).to(tl.float32)
    c_end = tl.minimum(tl.max(last, axis=0) // BK + 1, TK)
    for c in range(0, c_end):
        j = c * BK + tl.arange(0, BK)
        k = tl.load(KC + b * skb + hk * skh + j[:, None] * skn + d[None, :], mask=(j < NK)[:, None], other=0)
        if DROP > 0:
            k = (k >> DROP) << DROP
        s = tl.dot(q, tl.trans(k)).to(tl.float32)
        s = tl.where(j[None, :] <= last[:, None], s, float("-inf"))
        best = (tl.max(s, axis=1) + bonus) * f
        if SHARED:
            best = tl.max(tl.reshape(tl.where(ok, best, float("-inf")), (ROWS // GP, GP)), axis=1)
            aa = pid_r * (ROWS // GP) + tl.arange(0, ROWS // GP)
            tl.store(OUT + b * sob + hk * soh + aa * soa + c, best, mask=aa < TQ)
        else:
            tl.store(OUT + b * sob + h * soh + a * soa + c, best, mask=ok)


@triton.jit
def _pooled_scores_kernel(
    QC, KC, F, NVALID, OUT,
    sqb, sqh, sqa, skb, skh, skn, sfb, sob, soh, soa,
    HKV, TQ, TK, G,
    D: tl.constexpr, CB: tl.constexpr, ROWS: tl.constexpr, GP: tl.constexpr, SHARED: tl.constexpr,
):
    pid_r = tl.program_id(0)
    b = tl.program_id(1) // HKV
    hk = tl.program_id(1) % HKV
    r = pid_r * ROWS + tl.arange(0, ROWS)
    if SHARED:
        a, hq = r // GP, r % GP
    else:
        a, hq = r % TQ, r // TQ
    ok = (hq < G) & (a < TQ)
    h = hk * G + hq
    d = tl.arange(0, D)
    q = tl.load(QC + b * sqb + h[:, None] * sqh + a[:, None] * sqa + d[None, :], mask=ok[:, None], other=0)
    nvalid = tl.load(NVALID + a, mask=ok, other=0)
    f = tl.load(F + b * sfb + h, mask=ok, other=1.0)
    for c0 in range(0, TK, CB):
        c = c0 + tl.arange(0, CB)
        k = tl.load(KC + b * skb + hk * skh + c[:, None] * skn + d[None, :], mask=(c < TK)[:, None], other=0)
        s = tl.dot(q, tl.trans(k)).to(tl.float32)
        s = tl.where((c[None, :] < nvalid[:, None]) & ok[:, None], s, float("-inf")) * f[:, None]
        if SHARED:
            s = tl.max(tl.reshape(s, (ROWS // GP, GP, CB)), axis=1)
            aa = pid_r * (ROWS // GP) + tl.arange(0, ROWS // GP)
            tl.store(OUT + b * sob + hk * soh + aa[:, None] * soa + c[None, :], s, mask=(aa < TQ)[:, None]
                     & (c < TK)[None, :])
        else:
            tl.store(OUT + b * sob + h[:, None] * soh + a[:, None] * soa + c[None, :], s,
                     mask=ok[:, None] & (c < TK)[None, :])


def _check_codes(qc: torch.Tensor, kc: torch.Tensor, factor: torch.Tensor) -> tuple[int, int, int, int, int]:
    check_rank("q codes", qc, (None, None, None, None))
    b, h, tq, d = qc.shape
    check_rank("k codes", kc, (b, None, None, d))
    check_rank("factor", factor, (b, h))
    check_dtype("q codes", qc, (torch.int8,))
    check_dtype("k codes", kc, (torch.int8,))
    check_dtype("factor", factor, (torch.float32,))
    if d < 16 or d > 256 or d & (d - 1):
        raise InvalidInputError(f"head_dim must be a power of two in 16..256 for the prediction kernels, got {d}")
    hkv = kc.shape[1]
    if h % hkv:
        raise InvalidInputError(f"query heads ({h}) must be a multiple of KV heads ({hkv})")
    return b, h, hkv, tq, d


def _grid_rows(tq: int, g: int, shared: bool) -> tuple[int, int]:
    gp = next_pow2(g) if shared else 1
    rows = max(ROWS, gp)
    n = tq * gp if shared else tq * g
    return gp, triton.cdiv(n, rows)


def token_block_scores(
    qc: torch.Tensor, kc: torch.Tensor, factor: torch.Tensor, bonus: torch.Tensor, last_pos: torch.Tensor,
    block_k: int, drop: int, group_shared: bool,
) -> torch.Tensor:
    """Scores of ``dlzs``/``pade``: ``qc`` int8 ``[B, H, Tq, D]``, ``kc`` int8 ``[B, Hkv, Nk, D]``, ``factor`` float32
    ``[B, H]``, ``bonus`` int32 ``[B, H, Tq]``, ``last_pos`` ``[Tq]`` (last key each query block sees); returns float32
    ``[B, Hs, Tq, ceil(Nk / block_k)]``, ``-inf`` where a block is not seen."""
    b, h, hkv, tq, d = _check_codes(qc, kc, factor)
    check_rank("bonus", bonus, (b, h, tq))
    check_rank("last_pos", last_pos, (tq,))
    if block_k < 16 or block_k & (block_k - 1) or block_k > 256:
        raise InvalidInputError(f"block_k must be a power of two in 16..256 for the kernels, got {block_k}")
    nk = kc.shape[2]
    tk = triton.cdiv(nk, block_k)
    g = h // hkv
    gp, nprog = _grid_rows(tq, g, group_shared)
    out = torch.full((b, hkv if group_shared else h, tq, tk), float("-inf"), dtype=torch.float32, device=qc.device)
    qc, kc, bonus = qc.contiguous(), kc.contiguous(), bonus.to(torch.int32).contiguous()
    last = last_pos.to(device=qc.device, dtype=torch.int32).contiguous()
    f = factor.contiguous()
    _token_scores_kernel[(nprog, b * hkv)](
        qc, kc, f, bonus, last, out,
        qc.stride(0), qc.stride(1), qc.stride(2), kc.stride(0), kc.stride(1), kc.stride(2), f.stride(0),
        bonus.stride(0), bonus.stride(1), out.stride(0), out.stride(1), out.stride(2),
        hkv, tq, nk, tk, g,
        D=d, BK=block_k, ROWS=max(ROWS, gp), GP=gp, SHARED=group_shared, DROP=drop,
    )
    return out


def pooled_block_scores(
    qc: torch.Tensor, kc: torch.Tensor, factor: torch.Tensor, n_valid: torch.Tensor, group_shared: bool,
) -> torch.Tensor:
    """Scores of ``pooled``: ``qc`` int8 ``[B, H, Tq, D]`` and pooled key codes ``kc`` int8 ``[B, Hkv, Tk, D]``;
    ``n_valid [Tq]`` the key blocks each query block sees. Returns float32 ``[B, Hs, Tq, Tk]``."""
    b, h, hkv, tq, d = _check_codes(qc, kc, factor)
    check_rank("n_valid", n_valid, (tq,))
    tk = kc.shape[2]
    g = h // hkv
    gp, nprog = _grid_rows(tq, g, group_shared)
    out = torch.empty((b, hkv if group_shared else h, tq, tk), dtype=torch.float32, device=qc.device)
    qc, kc, f = qc.contiguous(), kc.contiguous(), factor.contiguous()
    nv = n_valid.to(device=qc.device, dtype=torch.int32).contiguous()
    _pooled_scores_kernel[(nprog, b * hkv)](
        qc, kc, f, nv, out,
        qc.stride(0), qc.stride(1), qc.stride(2), kc.stride(0), kc.stride(1), kc.stride(2), f.stride(0),
        out.stride(0), out.stride(1), out.stride(2),
        hkv, tq, tk, g,
        D=d, CB=min(64, max(16, next_pow2(tk))), ROWS=max(ROWS, gp), GP=gp, SHARED=group_shared,
    )
    return out
