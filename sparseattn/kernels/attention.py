"""Block-sparse flash-attention forward that visits the kept key blocks in the order it is given: descending
predicted score, SOFA's sorted updating (SU-FA, SOFA §III-D).

The shape of Triton's fused-attention tutorial (``06-fused-attention.py``): a program owns a tile of query rows,
loads its query block's compact list (``kv_num_blocks``, ``kv_indices``: FlexAttention's layout) and runs the
online softmax over the listed key blocks (``exp2`` with the scale folded into ``log2 e``), masking inside a block
only where it crosses the causal diagonal or the end of the keys.

Sorted updating on a GPU: the first blocks visited hold the largest logits, so later blocks rarely raise a row's
running maximum; the kernel rescales the accumulator only when some row's maximum rose (a scalar branch per
tile, as FlashAttention-3 does), so the saved rescales are saved work. ``count_rescales`` returns how many
(row, tile) rescales happened, to show what sorting saves against key order
(:func:`sparseattn.methods.blocksparse.visit_rescales` counts the same on the reference).

Rows are (head, position) pairs: ``GP`` heads x ``P`` positions. Without packing a program is one head and
``P = block_q`` positions. With ``pack`` (a GQA group sharing one selection) the ``GP`` query heads of one KV head
share the program, so each listed K/V block is loaded once for the whole group -- the layout decode needs, where
a program would otherwise hold a single query. ``splits > 1`` cuts each list into contiguous chunks run by
separate programs that write partial ``(m, l, acc)`` merged by log-sum-exp afterwards (flash-decoding).

Head dim 64 or 128; float16, bfloat16 or float32 (float32 runs IEEE fp32 dots). Under the interpreter the dots
run in float32 on operands rounded to the input dtype (the interpreter's bf16 ``tl.dot`` is wrong).
"""

from __future__ import annotations

import math

import torch

from ..core.errors import InvalidInputError
from ._jit import INTERPRETED, tl, triton
from ._runtime import ATTN_DTYPES, check_block, check_dtype, check_rank, next_pow2

LOG2E = 1.4426950408889634


def _configs() -> list:
    if INTERPRETED:
        return [triton.Config({}, num_warps=4, num_stages=1)]
    return [triton.Config({}, num_warps=w, num_stages=s) for w in (4, 8) for s in (2, 3, 4)]


@triton.autotune(configs=_configs(), key=["D", "BQ", "BK", "P", "GP", "CAUSAL", "SPLITS", "COUNT"])
@triton.jit
def _attn_kernel(
    Q, K, V, NUM, IDX, OUT, ML, ACC, RESC,
    sqb, sqh, sqn, skb, skh, skn, svb, svh, svn, sob, soh, son,
    snb, snh, sna, sib, sih, sia, smb, smh, smn, sab, sah, san, sas, srb, srh, srn,
    HPROG, G, NQ, NK, OFFSET, qk_scale,
    D: tl.constexpr, BQ: tl.constexpr, BK: tl.constexpr, P: tl.constexpr, GP: tl.constexpr,
    CAUSAL: tl.constexpr, SHARED: tl.constexpr, PACK: tl.constexpr, SPLITS: tl.constexpr,
    COUNT: tl.constexpr, DOT_F32: tl.constexpr,
):
    pid_t = tl.program_id(0)
    b = tl.program_id(1) // HPROG
    hp = tl.program_id(1) % HPROG
    split = tl.program_id(2)
    r = tl.arange(0, GP * P)
    pos = pid_t * P + r % P
    if PACK:
        hk = hp
        h = hp * G + r // P
        hsel = hp
        row_ok = (r // P < G) & (pos < NQ)
    else:
        hk = hp // G
        h = hp + 0 * r
        hsel = hp
        if SHARED:
            hsel = hp // G
        row_ok = pos < NQ
    a = (pid_t * P) // BQ
    d = tl.arange(0, D)
    q = tl.load(Q + b * sqb + h[:, None] * sqh + pos[:, None] * sqn + d[None, :], mask=row_ok[:, None], other=0.0)
    if DOT_F32:
        q = q.to(tl.float32)
    qpos = OFFSET + pos
    first_q = OFFSET + pid_t * P
    n = tl.load(NUM + b * snb + hsel * snh + a * sna)
    chunk = tl.cdiv(n, SPLITS)
    i0 = split * chunk
    i1 = tl.minimum(n, i0 + chunk)
    m_i = tl.full([GP * P], float("-inf"), tl.float32)
    l_i = tl.zeros([GP * P], tl.float32)
    acc = tl.zeros([GP * P, D], tl.float32)
    resc = tl.zeros([GP * P], tl.int32)
    kbase = K + b * skb + hk * skh
    vbase = V + b * svb + hk * svh
    lst = IDX + b * sib + hsel * sih + a * sia
    for i in range(i0, i1):
        c = tl.load(lst + i)
        j = c * BK + tl.arange(0, BK)
        k = tl.load(kbase + j[:, None] * skn + d[None, :], mask=(j < NK)[:, None], other=0.0)
        if DOT_F32:
            k = k.to(tl.float32)
        if DOT_F32:
            qk = tl.dot(q, tl.trans(k), input_precision="ieee") * qk_scale
        else:
            qk = tl.dot(q, tl.trans(k)) * qk_scale
        edge = c * BK + BK > NK
        if CAUSAL:
            edge = edge | (c * BK + BK - 1 > first_q)
        if edge:
            ok = j[None, :] < NK
            if CAUSAL:
                ok = ok & (j[None, :] <= qpos[:, None])
            qk = tl.where(ok, qk, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(qk, axis=1))
        rose = (m_new > m_i) & (m_i > float("-inf"))
        if COUNT:
            resc += rose.to(tl.int32)
        m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)
        p = tl.math.exp2(qk - m_safe[:, None])
        if tl.max(rose.to(tl.int32), axis=0) > 0:
            alpha = tl.math.exp2(m_i - m_safe)
            acc = acc * alpha[:, None]
            l_i = l_i * alpha
        l_i += tl.sum(p, axis=1)
        v = tl.load(vbase + j[:, None] * svn + d[None, :], mask=(j < NK)[:, None], other=0.0)
        pv = p.to(v.dtype)
        if DOT_F32:
            acc += tl.dot(pv.to(tl.float32), v.to(tl.float32), input_precision="ieee")
        else:
            acc += tl.dot(pv, v)
        m_i = m_new
    if SPLITS == 1:
        out = acc / tl.where(l_i > 0, l_i, 1.0)[:, None]
        o_ptr = OUT + b * sob + h[:, None] * soh + pos[:, None] * son + d[None, :]
        tl.store(o_ptr, out.to(OUT.dtype.element_ty), mask=row_ok[:, None])
    else:
        ml = ML + b * smb + h * smh + pos * smn + split * 2
        tl.store(ml, m_i, mask=row_ok)
        tl.store(ml + 1, l_i, mask=row_ok)
        a_ptr = ACC + b * sab + h[:, None] * sah + pos[:, None] * san + split * sas + d[None, :]
        tl.store(a_ptr, acc, mask=row_ok[:, None])
    if COUNT:
        tl.store(RESC + b * srb + h * srh + pos * srn + split, resc, mask=row_ok)


def _check_inputs(q, k, v, kv_num_blocks, kv_indices, block_q, block_k) -> tuple[int, ...]:
    check_rank("q", q, (None, None, None, None))
    b, h, nq, d = q.shape
    check_rank("k", k, (b, None, None, d))
    check_rank("v", v, tuple(k.shape))
    for name, x in (("q", q), ("k", k), ("v", v)):
        check_dtype(name, x, ATTN_DTYPES)
    if not q.dtype == k.dtype == v.dtype:
        raise InvalidInputError(f"q, k and v must share one dtype, got {q.dtype}, {k.dtype}, {v.dtype}")
    if d not in (64, 128):
        raise InvalidInputError(f"head_dim must be 64 or 128 for the attention kernel, got {d}")
    hkv = k.shape[1]
    if h % hkv:
        raise InvalidInputError(f"query heads ({h}) must be a multiple of KV heads ({hkv})")
    check_block("block_q", block_q)
    check_block("block_k", block_k)
    tq, tk = math.ceil(nq / block_q), math.ceil(k.shape[2] / block_k)
    check_rank("kv_num_blocks", kv_num_blocks, (b, None, tq))
    hs = kv_num_blocks.shape[1]
    if hs not in (h, hkv):
        raise InvalidInputError(f"the selection must have {h} (per head) or {hkv} (per KV head) heads, got {hs}")
    check_rank("kv_indices", kv_indices, (b, hs, tq, tk))
    check_dtype("kv_num_blocks", kv_num_blocks, (torch.int32,))
    check_dtype("kv_indices", kv_indices, (torch.int32,))
    return b, h, hkv, nq, d, hs


def _layout(h: int, hkv: int, hs: int, nq: int, block_q: int, pack: bool | None) -> tuple[bool, int, int]:
    """``(pack, GP, P)``: heads and positions per program (rows = GP * P, at least 16)."""
    g = h // hkv
    shared = hs == hkv
    if pack is None:
        pack = shared and g > 1 and (g & (g - 1) == 0 or nq < 16)
    if pack and not shared:
        raise InvalidInputError("pack=True needs a selection shared by each GQA group (one per KV head)")
    if not pack:
        return False, 1, block_q
    gp = next_pow2(g)
    p = max(1, min(block_q, 128 // gp, next_pow2(nq)))
    p = max(p, 16 // gp)
    return True, gp, min(p, block_q)


def block_sparse_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, kv_num_blocks: torch.Tensor, kv_indices: torch.Tensor,
    block_q: int, block_k: int, causal: bool, scale: float | None = None, *, splits: int = 1,
    count_rescales: bool = False, pack: bool | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Attention of ``q [B, H, Nq, D]`` over the listed key blocks of ``k, v [B, Hkv, Nk, D]``.

    ``kv_num_blocks int32 [B, Hs, Tq]`` and ``kv_indices int32 [B, Hs, Tq, Tk]`` (``Hs`` = ``H``, or ``Hkv`` for a
    selection shared by each GQA group) list each query block's key blocks in visiting order. Causal queries are
    the last ``Nq`` positions. Rows with no visible listed key get zeros. Returns ``(out, rescales)``;
    ``rescales`` int32 ``[B, H, Nq]`` (with ``count_rescales``) counts each row's online-softmax rescales.
    """
    b, h, hkv, nq, d, hs = _check_inputs(q, k, v, kv_num_blocks, kv_indices, block_q, block_k)
    nk = k.shape[2]
    if causal and nq > nk:
        raise InvalidInputError(f"causal attention needs q_len <= k_len, got {nq} > {nk}")
    if isinstance(splits, bool) or not isinstance(splits, int) or splits < 1:
        raise InvalidInputError(f"splits must be a positive int, got {splits!r}")
    pack, gp, p = _layout(h, hkv, hs, nq, block_q, pack)
    scale = 1.0 / math.sqrt(d) if scale is None else float(scale)
    out = torch.empty_like(q)
    f32 = {"device": q.device, "dtype": torch.float32}
    ml = torch.empty((b, h, nq, splits, 2), **f32) if splits > 1 else out.new_empty(1, dtype=torch.float32)
    acc = torch.empty((b, h, nq, splits, d), **f32) if splits > 1 else ml
    resc = torch.zeros((b, h, nq, splits), device=q.device, dtype=torch.int32) if count_rescales else \
        torch.zeros(1, device=q.device, dtype=torch.int32)
    hprog = hkv if pack else h
    grid = (triton.cdiv(nq, p), b * hprog, splits)
    sm = ml.stride() if splits > 1 else (0, 0, 0)
    sa = acc.stride() if splits > 1 else (0, 0, 0, 0)
    sr = resc.stride() if count_rescales else (0, 0, 0)
    _attn_kernel[grid](
        q, k, v, kv_num_blocks, kv_indices, out, ml, acc, resc,
        *q.stride()[:3], *k.stride()[:3], *v.stride()[:3], *out.stride()[:3],
        *kv_num_blocks.stride()[:3], *kv_indices.stride()[:3], *sm[:3], *sa[:4], *sr[:3],
        hprog, h // hkv, nq, nk, nk - nq if causal else 0, scale * LOG2E,
        D=d, BQ=block_q, BK=block_k, P=p, GP=gp, CAUSAL=causal, SHARED=hs == hkv, PACK=pack, SPLITS=splits,
        COUNT=count_rescales, DOT_F32=INTERPRETED or q.dtype == torch.float32,
    )
    if splits > 1:
        out = merge_splits(ml, acc).to(q.dtype)
    return out, (resc.sum(dim=-1, dtype=torch.int32) if count_rescales else None)


def merge_splits(ml: torch.Tensor, acc: torch.Tensor) -> torch.Tensor:
    """Merge per-split ``(m, l)`` ``[..., S, 2]`` (log2 domain) and ``acc [..., S, D]`` by log-sum-exp."""
    m, l_ = ml[..., 0], ml[..., 1]
    top = m.amax(dim=-1, keepdim=True)
    w = torch.exp2(m - torch.where(torch.isinf(top), torch.zeros_like(top), top))
    w = torch.where(torch.isinf(m), torch.zeros_like(w), w)
    den = (w * l_).sum(dim=-1, keepdim=True)
    num = (w.unsqueeze(-1) * acc).sum(dim=-2)
    return num / torch.where(den > 0, den, torch.ones_like(den))
