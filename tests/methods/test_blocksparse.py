"""The ``star_block`` reference (block-sparse STAR): budgets, forced blocks, SADS segments, mass mode, GQA
sharing, the predictors' arithmetic, the visiting order and the trace."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import sparseattn
from sparseattn.core.bits import leading_one
from sparseattn.core.call import AttentionCall
from sparseattn.core.validation import validate_qkv
from sparseattn.methods.blocksparse import (
    StarBlockParams,
    block_codes,
    log_codes,
    plan_blocks,
    predict_block_scores,
    select_blocks,
)
from tests.helpers import random_qkv

B16 = {"block_q": 16, "block_k": 16, "local_blocks": 1}


def _blocks(keep: torch.Tensor, b: int = 16) -> torch.Tensor:
    nq, nk = keep.shape[-2:]
    tq, tk = math.ceil(nq / b), math.ceil(nk / b)
    padded = torch.zeros(*keep.shape[:-2], tq * b, tk * b, dtype=torch.bool)
    padded[..., :nq, :nk] = keep
    return padded.view(*keep.shape[:-2], tq, b, tk, b).any(dim=-1).any(dim=-2)


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("predictor", ["dlzs", "pooled", "pade"])
def test_keeping_everything_is_dense(causal, predictor):
    q, k, v = random_qkv(b=2, h=6, hkv=2, nq=50, nk=70 if not causal else 50, d=32)
    out = sparseattn.attention(q, k, v, "star_block", causal=causal, ratio=1.0, predictor=predictor, **B16)
    dense = sparseattn.attention(q, k, v, "dense", causal=causal)
    torch.testing.assert_close(out.out, dense.out, atol=1e-5, rtol=1e-5)
    assert out.density == pytest.approx(1.0)


def test_forced_blocks_and_budget():
    q, k, v = random_qkv(b=1, h=2, hkv=2, nq=160, nk=160, d=32, seed=1)
    r = sparseattn.attention(q, k, v, "star_block", causal=True, ratio=0.2, **B16)
    kept = _blocks(r.keep)  # [1, 2, 10, 10]
    a = torch.arange(10)
    assert kept[..., 0].all()  # sink
    assert kept[..., a, a].all()  # diagonal
    assert kept[..., a[1:], a[1:] - 1].all()  # one local block
    valid = a + 1
    expect = torch.maximum(torch.ceil(valid * 0.2 - 1e-9), torch.minimum(valid, torch.full_like(valid, 3)))
    assert torch.equal(kept.sum(dim=-1)[0, 0], torch.minimum(expect.long(), valid))


def test_segments_keep_their_own_share():
    q, k, v = random_qkv(b=1, h=1, hkv=1, nq=16, nk=256, d=32, seed=2)
    r = sparseattn.attention(q, k, v, "star_block", causal=False, ratio=0.25, segments=4, keep_first=False,
                             keep_diagonal=False, **{**B16, "local_blocks": 0})
    kept = _blocks(r.keep)[0, 0, 0]  # 16 key blocks, 4 segments of 4
    assert kept.view(4, 4).sum(dim=-1).tolist() == [1, 1, 1, 1]


def test_mass_budget_is_monotone():
    q, k, v = random_qkv(b=1, h=2, hkv=1, nq=96, nk=96, d=32, seed=3, spread=3.0)
    small = sparseattn.attention(q, k, v, "star_block", causal=True, mass=0.3, **B16)
    large = sparseattn.attention(q, k, v, "star_block", causal=True, mass=0.95, **B16)
    assert (small.keep <= large.keep).all()
    assert small.density < large.density


def test_group_shared_selection():
    q, k, v = random_qkv(b=1, h=4, hkv=2, nq=160, nk=160, d=32, seed=4)
    kw = {"causal": True, "ratio": 0.3, "keep_first": False, **B16, "local_blocks": 0}
    shared = sparseattn.attention(q, k, v, "star_block", **kw).keep
    assert torch.equal(shared[:, 0], shared[:, 1]) and torch.equal(shared[:, 2], shared[:, 3])
    own = sparseattn.attention(q, k, v, "star_block", group_shared=False, **kw).keep
    assert not torch.equal(own[:, 0], own[:, 1])


def test_empty_rows_output_zero():
    """With query blocks larger than key blocks and no forced blocks, a query block may keep only a key block its
    first rows cannot see (causal): those rows output zeros."""
    _, _, v = random_qkv(b=1, h=1, hkv=1, nq=64, nk=64, d=32, seed=5)
    q = torch.ones(1, 1, 64, 32)
    k = torch.where((torch.arange(64) // 16 % 2 == 1)[:, None], 5.0, -1.0).expand(1, 1, 64, 32).contiguous()
    r = sparseattn.attention(q, k, v, "star_block", causal=True, ratio=0.1, keep_first=False, keep_diagonal=False,
                             local_blocks=0, block_q=32, block_k=16)
    empty = ~r.keep.any(dim=-1)
    assert empty[0, 0, :16].all() and not empty[0, 0, 16:].any()
    assert torch.equal(r.out[empty], torch.zeros_like(r.out[empty]))
    assert torch.isfinite(r.out).all()


def test_parameters_validated():
    q, k, v = random_qkv()
    for bad in ({"ratio": 0.2, "mass": 0.9}, {"mass": 0.9, "segments": 2}, {"planes": 5, "bits": 4},
                {"ratio": 0}, {"predictor": "exact"}, {"block_q": 0}, {"unknown": 1}):
        with pytest.raises(ValueError):
            sparseattn.attention(q, k, v, "star_block", **bad)


def test_log_codes_is_the_leading_one():
    c = torch.arange(-127, 128, dtype=torch.int8)
    assert torch.equal(log_codes(c).long(), leading_one(c))


def test_dlzs_block_score_by_hand():
    q = torch.zeros(1, 1, 16, 16)
    q[..., 0] = 6.0  # pooled query code: 127 -> leading one 64
    k = torch.zeros(1, 1, 32, 16)
    k[0, 0, 3, 0], k[0, 0, 20, 0] = 2.0, -1.0
    shape, scale = validate_qkv(q, k, k, False)
    p = StarBlockParams(**B16)
    codes = block_codes(AttentionCall(q, k, k, shape, scale), p)
    scores = predict_block_scores(codes, plan_blocks(shape, p), 0, 1, True)
    # block 0: best key 3 (code 127) -> 64 * 127; block 1: keys 16..31 best is 0 (key 20 is negative)
    factor = (6.0 / 127) * (2.0 / 127) * scale
    expect = torch.tensor([64 * 127.0, 0.0]) * torch.tensor(factor, dtype=torch.float32)
    torch.testing.assert_close(scores[0, 0, 0], expect)


def test_selection_blocks_follow_the_visiting_order():
    q, k, _ = random_qkv(b=2, h=4, hkv=2, nq=64, nk=64, d=32, seed=6)
    shape, scale = validate_qkv(q, k, k, True)
    p = StarBlockParams(ratio=0.5, **B16)
    plan = plan_blocks(shape, p)
    scores = predict_block_scores(block_codes(AttentionCall(q, k, k, shape, scale), p), plan, 0, plan.tq, True)
    _, num, order = select_blocks(scores, plan, 0, None)
    blocks = sparseattn.select(q, k, method="star_block", causal=True, ratio=0.5, **B16).blocks(16, 16)
    assert torch.equal(blocks.kv_num_blocks[:, ::2].long(), num)
    rank = torch.arange(4) < num[..., None]
    assert torch.equal(torch.where(rank, blocks.kv_indices[:, ::2].long(), -1), torch.where(rank, order, -1))


def test_trace_counts_prediction_selection_and_rescales():
    q, k, v = random_qkv(b=1, h=4, hkv=2, nq=64, nk=64, d=32, seed=7)
    traces = {}
    for predictor in ("dlzs", "pooled", "pade"):
        r = sparseattn.attention(q, k, v, "star_block", causal=True, predictor=predictor, ratio=0.5, **B16)
        w = r.trace
        assert w.count(stage="qk", op="mac") == pytest.approx(r.kept_pairs * 32)
        assert w.count(stage="select", op="compare") > 0
        assert {"rescales_sorted", "rescales_index", "kept_blocks"} <= set(w.meta)
        traces[predictor] = w.count(stage="predict")
    assert traces["pooled"] < traces["dlzs"]


@settings(max_examples=25)
@given(nq=st.integers(1, 70), extra=st.integers(0, 40), causal=st.booleans(), g=st.sampled_from([1, 3]),
       predictor=st.sampled_from(["dlzs", "pooled", "pade"]), block=st.sampled_from([8, 16, 32]),
       ratio=st.floats(0.05, 1.0))
def test_any_shape(nq, extra, causal, g, predictor, block, ratio):
    q, k, v = random_qkv(b=2, h=2 * g, hkv=2, nq=nq, nk=nq + extra, d=16, seed=nq)
    r = sparseattn.attention(q, k, v, "star_block", causal=causal, predictor=predictor, ratio=ratio,
                             block_q=block, block_k=block)
    dense_valid = sparseattn.attention(q, k, v, "dense", causal=causal).keep
    assert (r.keep <= dense_valid).all()
    assert r.keep.any(dim=-1).all()  # the diagonal blocks keep every row non-empty
    assert torch.isfinite(r.out).all()
