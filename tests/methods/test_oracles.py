import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import sparseattn
from sparseattn.core import valid_keys_per_row, valid_mask
from tests.helpers import random_qkv

shapes = st.tuples(st.integers(1, 40), st.integers(0, 30), st.booleans(), st.integers(0, 2**16))


def exact_logits(q, k):
    g = q.shape[1] // k.shape[1]
    return torch.matmul(q, k.repeat_interleave(g, dim=1).transpose(-1, -2)) / math.sqrt(q.shape[-1])


def masked_dense(q, k, v, keep):
    g = q.shape[1] // k.shape[1]
    s = exact_logits(q, k).masked_fill(~keep, float("-inf"))
    return torch.softmax(s, dim=-1) @ v.repeat_interleave(g, dim=1)


def check_common(r, q, k, v, causal):
    nq, nk = q.shape[2], k.shape[2]
    valid = valid_mask(nq, nk, causal)
    assert r.keep.dtype == torch.bool and r.keep.shape == (*q.shape[:3], nk)
    assert not bool((r.keep & ~valid).any()), "a causal row kept a future key"
    assert bool(r.keep.any(dim=-1).all()), "every row keeps at least one key"
    torch.testing.assert_close(r.out, masked_dense(q, k, v, r.keep), atol=1e-5, rtol=1e-5)
    assert r.trace.kept_pairs == r.kept_pairs
    assert r.trace.meta["oracle"] is True


@given(shapes, st.floats(0.01, 1.0))
def test_topk_keeps_the_largest_logits_with_the_right_count(shape, ratio):
    nq, extra, causal, seed = shape
    q, k, v = random_qkv(h=4, hkv=2, nq=nq, nk=nq + extra, d=16, seed=seed)
    r = sparseattn.attention(q, k, v, "topk", causal=causal, ratio=ratio)
    check_common(r, q, k, v, causal)
    nvalid = valid_keys_per_row(nq, nq + extra, causal)
    expected = torch.minimum(torch.clamp(torch.ceil(nvalid * ratio - 1e-9), min=16).long(), nvalid)
    assert torch.equal(r.keep.sum(dim=-1), expected.expand(1, 4, nq))
    s = exact_logits(q, k)
    valid = valid_mask(nq, nq + extra, causal)
    kept_min = s.masked_fill(~r.keep, float("inf")).amin(dim=-1)
    dropped_max = s.masked_fill(r.keep | ~valid, float("-inf")).amax(dim=-1)
    assert bool((kept_min >= dropped_max - 1e-6).all())


def test_topk_by_count_and_min_keys():
    q, k, v = random_qkv(nq=30, nk=30)
    r = sparseattn.attention(q, k, v, "topk", causal=True, k=4)
    assert r.keep.sum(dim=-1)[0, 0].tolist() == [min(4, i + 1) for i in range(30)]
    r = sparseattn.attention(q, k, v, "topk", causal=True, ratio=0.01, min_keys=3)
    assert r.keep.sum(dim=-1)[0, 0].tolist() == [min(3, i + 1) for i in range(30)]
    r = sparseattn.attention(q, k, v, "topk", causal=True, ratio=0.01)  # default floor: 16 keys
    assert r.keep.sum(dim=-1)[0, 0].tolist() == [min(16, i + 1) for i in range(30)]
    r = sparseattn.attention(q, k, v, "topk", causal=True, k=2, min_keys=5)
    assert r.keep.sum(dim=-1)[0, 0].tolist() == [min(5, i + 1) for i in range(30)]


def test_topk_full_ratio_is_dense():
    q, k, v = random_qkv(nq=33, nk=40)
    r = sparseattn.attention(q, k, v, "topk", causal=True, ratio=1.0)
    d = sparseattn.attention(q, k, v, "dense", causal=True)
    torch.testing.assert_close(r.out, d.out, atol=1e-6, rtol=1e-6)
    assert r.density == 1.0


@given(shapes, st.floats(0.0, 6.0))
def test_threshold_keeps_exactly_the_keys_within_delta(shape, delta):
    nq, extra, causal, seed = shape
    q, k, v = random_qkv(nq=nq, nk=nq + extra, d=16, seed=seed, spread=2.0)
    r = sparseattn.attention(q, k, v, "threshold", causal=causal, delta=delta)
    check_common(r, q, k, v, causal)
    valid = valid_mask(nq, nq + extra, causal)
    s = exact_logits(q, k).masked_fill(~valid, float("-inf"))
    gap = s.amax(dim=-1, keepdim=True) - s
    assert bool(r.keep[gap < delta - 1e-4].all())
    assert not bool(r.keep[(gap > delta + 1e-4) & valid].any())


def test_threshold_extremes():
    q, k, v = random_qkv(nq=40, nk=40, spread=2.0)
    d = sparseattn.attention(q, k, v, "dense", causal=True)
    r = sparseattn.attention(q, k, v, "threshold", causal=True, delta=float("inf"))
    torch.testing.assert_close(r.out, d.out, atol=1e-6, rtol=1e-6)
    r0 = sparseattn.attention(q, k, v, "threshold", causal=True, delta=0.0)
    assert bool((r0.keep.sum(dim=-1) == 1).all())  # only the row max (no ties in random data)


@given(shapes, st.sampled_from([4, 8, 16]), st.floats(0.05, 1.0), st.integers(0, 2))
def test_block_topk_keeps_whole_blocks_and_the_forced_ones(shape, block, ratio, local):
    nq, extra, causal, seed = shape
    nk = nq + extra
    q, k, v = random_qkv(nq=nq, nk=nk, d=16, seed=seed)
    r = sparseattn.attention(q, k, v, "block_topk", causal=causal, block_size=block, ratio=ratio, local_blocks=local)
    check_common(r, q, k, v, causal)
    valid = valid_mask(nq, nk, causal)
    keep = r.keep[0, 0]
    offset = nk - nq
    for i in range(nq):  # first key block and the query's own (diagonal) block are always kept
        assert bool(keep[i, : min(block, offset + i + 1)].all() or (not causal and bool(keep[i, :block].all())))
        own = (offset + i) // block * block
        assert bool(keep[i, own : offset + i + 1].all())
    # block granularity: inside a (query block, key block) all valid pairs are kept or none
    for a in range(0, nq, block):
        for c in range(0, nk, block):
            tile, tile_valid = keep[a : a + block, c : c + block], valid[a : a + block, c : c + block]
            assert bool((tile == tile_valid).all()) or not bool(tile.any())


def test_block_topk_full_ratio_is_dense():
    q, k, v = random_qkv(nq=70, nk=70)
    r = sparseattn.attention(q, k, v, "block_topk", causal=True, block_size=16, ratio=1.0)
    assert r.density == 1.0


def test_block_topk_ratio_controls_density():
    q, k, v = random_qkv(nq=256, nk=256)
    dens = [
        sparseattn.attention(q, k, v, "block_topk", causal=True, block_size=16, ratio=x).density
        for x in (0.1, 0.3, 0.6)
    ]
    assert dens[0] < dens[1] < dens[2]


@pytest.mark.parametrize(
    ("method", "params", "needle"),
    [
        ("topk", {"ratio": 0.0}, "greater than 0"),
        ("topk", {"ratio": 1.5}, "less than or equal to 1"),
        ("topk", {"ratio": 0.5, "k": 3}, "either ratio or k"),
        ("topk", {"k": 0}, "greater than or equal to 1"),
        ("threshold", {"delta": -1.0}, "greater than or equal to 0"),
        ("threshold", {"delta": float("nan")}, "delta"),
        ("block_topk", {"block_size": 0}, "greater than or equal to 1"),
        ("block_topk", {"ratio": 2}, "less than or equal to 1"),
    ],
)
def test_out_of_range_parameters(method, params, needle):
    q, k, v = random_qkv()
    with pytest.raises(ValueError, match=needle):
        sparseattn.attention(q, k, v, method, causal=True, **params)
