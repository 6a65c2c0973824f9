import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import sparseattn
from sparseattn.core import InvalidInputError, bit_planes, plane_weights, quantize_symmetric, valid_mask
from sparseattn.hw.bitserial import work_without_bs
from sparseattn.methods.dense import integer_logits
from sparseattn.methods.pade import active_elements, bui_offsets, tile_order, truncated_keys
from tests.helpers import random_qkv

int8 = st.integers(-128, 127)


@given(st.integers(1, 16), st.integers(0, 2**16))
def test_planes_recompose_the_exact_int8_dot_product(d, seed):
    g = torch.Generator().manual_seed(seed)
    q = torch.randint(-127, 128, (d,), generator=g)
    k = torch.randint(-128, 128, (5, d), generator=g)
    planes = bit_planes(k, 8).to(torch.int64)  # [8, 5, d], MSB first
    per_plane = (planes * q).sum(dim=-1)  # q . b for each plane
    assert torch.equal((plane_weights(8)[:, None] * per_plane).sum(dim=0), k @ q)
    assert torch.equal(truncated_keys(k, 8, 8), k)


@given(st.integers(2, 12), st.integers(1, 32), st.integers(0, 2**16))
def test_bounds_contain_the_final_score_and_are_nested(bits, d, seed):
    g = torch.Generator().manual_seed(seed)
    lim = 2 ** (bits - 1)
    q = torch.randint(-lim + 1, lim, (3, d), generator=g)
    k = torch.randint(-lim, lim, (7, d), generator=g)
    imin, imax = bui_offsets(q, bits)  # [3, bits]
    final = (q @ k.T).double()
    lo_prev = hi_prev = None
    for r in range(1, bits + 1):
        partial = (q @ truncated_keys(k, bits, r).T).double()
        lo, hi = partial + imin[:, r - 1 : r], partial + imax[:, r - 1 : r]
        assert bool((lo <= final).all()) and bool((final <= hi).all())
        if lo_prev is not None:
            assert bool((lo >= lo_prev).all()) and bool((hi <= hi_prev).all())  # nested intervals
        lo_prev, hi_prev = lo, hi
    assert torch.equal(lo_prev, final) and torch.equal(hi_prev, final)


def test_bidirectional_sparsity_halves_the_active_elements():
    k = torch.randint(-128, 128, (20, 64), generator=torch.Generator().manual_seed(0))
    bs = active_elements(k, 8, 8, bidirectional=True)
    ones = active_elements(k, 8, 8, bidirectional=False)
    assert int(bs.max()) <= 4 and torch.equal(bs, torch.minimum(ones, 8 - ones))
    q = torch.randint(-127, 128, (64,), generator=torch.Generator().manual_seed(1))
    b = bit_planes(k, 8)[3].to(torch.int64)
    assert torch.equal(b @ q, q.sum() - (1 - b) @ q)  # q.b = sum q - q.(1-b)


def test_ista_orders():
    assert tile_order(6, "plain") == [0, 1, 2, 3, 4, 5]
    assert tile_order(6, "head_tail", head=1, tail=2) == [0, 5, 4, 1, 2, 3]
    assert tile_order(2, "head_tail", head=1, tail=2) == [0, 1]
    assert sorted(tile_order(9, "head_tail", head=2, tail=3)) == list(range(9))


def sequential_pade(q, k, causal, alpha, radius, tile, order, head, tail, bits=8):
    """Literal reference: per row, tiles in ISTA order, rounds one by one, a running threshold."""
    qq, kq = quantize_symmetric(q, bits), quantize_symmetric(k, bits)
    b_, h, nq, d = q.shape
    nk, g = k.shape[2], h // k.shape[1]
    factor = float(qq.scale) * float(kq.scale) / math.sqrt(d)
    valid = valid_mask(nq, nk, causal)
    keep = torch.zeros(b_, h, nq, nk, dtype=torch.bool)
    planes = torch.zeros(b_, h, nq, nk, dtype=torch.int64)
    chunk = tile * max(1, 128 // tile)
    for bi in range(b_):
        for hi in range(h):
            kint = kq.values[bi, hi // g].to(torch.int64)
            for i in range(nq):
                qi = qq.values[bi, hi, i].to(torch.int64)
                imin, imax = bui_offsets(qi[None], bits)
                reach = (nk - nq + (i // chunk) * chunk + min(chunk, nq - (i // chunk) * chunk)) if causal else nk
                nt = math.ceil(reach / tile)
                t = -math.inf
                for tt in tile_order(nt, order, head, tail):
                    active = [j for j in range(tt * tile, min((tt + 1) * tile, nk)) if valid[i, j]]
                    for j in active:
                        planes[bi, hi, i, j] = 1
                    for r in range(1, bits + 1):
                        if not active:
                            break
                        part = {j: int(qi @ truncated_keys(kint[j], bits, r)) for j in active}
                        t = max(t, max(part[j] + float(imin[0, r - 1]) for j in active) * factor - alpha * radius)
                        active = [j for j in active if (part[j] + float(imax[0, r - 1])) * factor > t]
                        if r < bits:
                            for j in active:
                                planes[bi, hi, i, j] += 1
                    for j in active:
                        keep[bi, hi, i, j] = True
    return keep, planes


@settings(max_examples=12)
@given(
    st.integers(1, 20),
    st.integers(0, 12),
    st.booleans(),
    st.floats(0.1, 1.0),
    st.sampled_from([4, 8]),
    st.sampled_from(["head_tail", "plain"]),
    st.integers(0, 2**16),
)
def test_vectorised_pruning_equals_the_sequential_algorithm(nq, extra, causal, alpha, tile, order, seed):
    q, k, v = random_qkv(h=2, hkv=1, nq=nq, nk=nq + extra, d=16, seed=seed, spread=2.0)
    r = sparseattn.attention(q, k, v, "pade", causal=causal, alpha=alpha, radius=2.0, tile=tile, order=order)
    keep, planes = sequential_pade(q, k, causal, alpha, 2.0, tile, order, 1, 2)
    assert torch.equal(r.keep, keep)
    hist = torch.bincount(planes[planes > 0], minlength=9)[1:].tolist()
    assert r.trace.meta["planes_histogram"] == hist


@given(
    st.integers(1, 48),
    st.integers(0, 40),
    st.booleans(),
    st.floats(0.05, 1.0),
    st.sampled_from(["head_tail", "plain"]),
    st.integers(1, 3),
    st.integers(0, 2**16),
)
def test_oracle_set_always_survives_and_the_final_mask_equals_it(nq, extra, causal, alpha, order, hkv, seed):
    q, k, v = random_qkv(h=2 * hkv, hkv=hkv, nq=nq, nk=nq + extra, d=16, seed=seed, spread=2.0)
    logits, _, _ = integer_logits(q, k, 1 / math.sqrt(16), 8, "tensor")
    valid = valid_mask(nq, nq + extra, causal)
    rowmax = logits.masked_fill(~valid, float("-inf")).amax(dim=-1, keepdim=True)
    margin = alpha * 5.0
    r = sparseattn.attention(q, k, v, "pade", causal=causal, alpha=alpha, tile=8, order=order)
    assert not bool((r.keep & ~valid).any())
    assert bool(r.keep.gather(-1, logits.masked_fill(~valid, float("-inf")).argmax(-1, keepdim=True)).all())
    sure = valid & (logits > rowmax - margin + 1e-4)
    assert bool(r.keep[sure].all())  # every key clearly inside the oracle set survives
    assert r.trace.meta["threshold_monotone"]
    m = sparseattn.attention(q, k, v, "pade", causal=causal, alpha=alpha, tile=8, order=order, final_mask=True)
    oracle = valid & (logits > rowmax - margin)
    near = (logits - (rowmax - margin)).abs() < 1e-4
    assert torch.equal(m.keep & ~near, oracle & ~near)


def test_nothing_pruned_with_a_huge_radius_equals_dense_int8():
    q, k, v = random_qkv(h=4, hkv=2, nq=40, nk=56, d=32, spread=2.0)
    r = sparseattn.attention(q, k, v, "pade", causal=True, alpha=1.0, radius=1e9)
    d = sparseattn.attention(q, k, v, "dense_int8", causal=True)
    assert r.density == 1.0
    torch.testing.assert_close(r.out, d.out, atol=1e-5, rtol=1e-5)
    assert r.trace.meta["avg_planes_per_key"] == 8.0 and r.trace.meta["k_read_fraction"] == 1.0


def test_trace_counts_and_gqa_sharing():
    q, k, v = random_qkv(h=6, hkv=2, nq=64, nk=64, d=32, spread=2.0, seed=4)
    w = sparseattn.attention(q, k, v, "pade", causal=True, alpha=0.5).trace
    m = w.meta
    assert sum(m["planes_histogram"]) == w.shape.valid_pairs
    assert 1 <= m["avg_planes_per_key"] < 8 and 0 < m["k_read_fraction"] < 1
    assert m["v_reads"] <= m["v_reads_without_reuse"] and m["v_reads"] <= m["v_reads_dense"]
    assert w.extra_reads["k_bit_planes"] == m["k_bits_read"] / 8
    assert w.count(stage="qk", op="mac") == 0  # bit-serial: additions and shifts only in QK
    assert w.count(stage="pv", op="mac") == m["survivors"] * 32
    # the lane timing model's sample: the first row of each block for every head of batch 0 (one block here)
    planes, busiest = w.samples["bitserial_planes"], w.samples["bitserial_busiest_nobs"]
    assert busiest.shape == (6, 64 * 8) and busiest.reshape(6, 64, 8).sum(-1).max() <= 8  # <= 8 planes x 1 slice
    nobs = work_without_bs(busiest, 64)  # the lane cycles are hw's (sparseattn.hw.bitserial)
    assert planes.shape == nobs.shape == (6, 64) and int(planes.max()) <= 8
    assert planes[:, 1:].sum() == 0 and bool((planes[:, 0] >= 1).all())  # row 0 of a causal block sees key 0 only
    assert bool((nobs >= planes * (32 // 64)).all()) and int(nobs.sum()) > 0


def test_decode_against_a_long_cache():
    q, k, v = random_qkv(h=3, hkv=1, nq=2, nk=700, d=64, spread=2.0)
    r = sparseattn.attention(q, k, v, "pade", causal=True)
    assert r.trace.shape.q_len == 2 and r.keep.shape == (1, 3, 2, 700) and bool(r.keep.any(-1).all())
    assert r.trace.meta["avg_planes_per_key"] < 8


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"alpha": 0.0}, "greater than 0"),
        ({"alpha": 1.5}, "less than or equal to 1"),
        ({"radius": 0.0}, "greater than 0"),
        ({"bits": 1}, "greater than or equal to 2"),
        ({"bits": 17}, "less than or equal to 16"),
        ({"granularity": "token"}, "granularity"),
        ({"group": 7}, "multiple of group"),
    ],
)
def test_bad_parameters(params, needle):
    q, k, v = random_qkv(d=32)
    with pytest.raises(ValueError, match=needle):
        sparseattn.attention(q, k, v, "pade", causal=True, **params)


def test_bad_tensors():
    q, k, v = random_qkv()
    with pytest.raises(InvalidInputError, match="NaN"):
        sparseattn.attention(q, k.masked_fill(k > 2, float("inf")), v, "pade")
    with pytest.raises(InvalidInputError, match="rank 4"):
        sparseattn.attention(q[0], k, v, "pade")
