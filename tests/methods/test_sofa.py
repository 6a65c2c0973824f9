import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import sparseattn
from sparseattn.core import InvalidInputError, InvalidParameterError, leading_one, valid_mask
from sparseattn.core.records import RassLoads, SadsSetting, SufaCounts
from sparseattn.methods.common import keep_top_counts
from sparseattn.methods.sofa import (
    COMPARATORS_PER_STEP,
    bitonic_network,
    dlzs_product,
    predict_keys,
    predict_scores,
    rass_loads,
    sads_select,
    sufa_attend,
)
from sparseattn.methods.sofa.sads import sort_network
from tests.helpers import random_qkv


# ------------------------------------------------------------------------------------------------ DLZS
def test_dlzs_rule_on_every_int8_pair():
    x = torch.arange(-128, 128).repeat_interleave(256)
    y = torch.arange(-128, 128).repeat(256)
    est = dlzs_product(x, y)
    exact = x * y
    nz = (x != 0) & (y != 0)
    assert bool((est[~nz] == 0).all())
    ratio = est[nz].double() / exact[nz].double()
    assert bool((ratio > 0.5).all()) and bool((ratio <= 1.0).all())  # under-estimates by a factor in (0.5, 1]
    power_of_two = nz & ((y.abs() & (y.abs() - 1)) == 0)
    assert torch.equal(est[power_of_two], exact[power_of_two])  # exact when |y| is a power of two


def test_sofa_fig7_worked_example():
    assert int(dlzs_product(torch.tensor(24), torch.tensor(6))) == 96  # 24 << floor(log2 6) = 24 << 2
    vanilla = int(leading_one(torch.tensor(24)) * leading_one(torch.tensor(6)))  # both operands snapped
    assert vanilla == 64 and abs(144 - 96) < abs(144 - vanilla)  # DLZS: error 48 instead of 80


@given(st.integers(1, 6), st.integers(1, 6), st.integers(1, 8), st.integers(0, 2**16))
def test_predicted_scores_are_sums_of_dlzs_products(nq, nk, d, seed):
    g = torch.Generator().manual_seed(seed)
    q = torch.randint(-(2**15) + 1, 2**15, (nq, d), generator=g)
    k = torch.randint(-127, 128, (nk, d), generator=g)
    brute = dlzs_product(k[None, :, :], q[:, None, :]).sum(dim=-1)  # K linear, Q in the log domain
    assert torch.equal(predict_scores(q, k).to(torch.int64), brute)
    w = torch.randint(-127, 128, (nk, d), generator=g)
    x = torch.randint(-127, 128, (nq, d), generator=g)
    assert torch.equal(predict_keys(x, w).to(torch.int64), dlzs_product(x[:, None, :], w[None, :, :]).sum(-1))


@pytest.mark.parametrize("method", ["sofa", "star"])
def test_the_predict_stage_has_no_multiplications(method):
    q, k, v = random_qkv(h=4, hkv=2, nq=64, nk=64, d=16)
    w = sparseattn.attention(q, k, v, method, causal=True, k=0.3, Tc=4).trace
    predict = {key for key in w.ops if key.stage == "predict"}
    assert {key.op for key in predict} == {"shift", "add", "lzc"}
    assert w.count(stage="predict", op="mul") == 0 and w.count(stage="predict", op="mac") == 0
    assert w.count(stage="predict", op="shift") == w.meta["dlzs_terms"] > 0
    assert w.meta["dlzs_terms"] + w.meta["dlzs_zero_skipped"] == w.shape.valid_pairs * 16


# ------------------------------------------------------------------------------------------------ SADS
def test_bitonic_network_sorts_and_pruning_keeps_the_top_four():
    net = bitonic_network(16)
    assert len(net) == 80
    g = torch.Generator().manual_seed(0)
    for _ in range(50):
        vals = torch.randn(16, generator=g).tolist()
        assert sort_network(vals, net) == sorted(vals, reverse=True)
    assert 40 < COMPARATORS_PER_STEP < 80


@given(st.integers(1, 24), st.integers(8, 80), st.floats(0.05, 1.0), st.integers(0, 2**16))
def test_one_segment_without_radius_is_the_global_top_k(rows, keys, ratio, seed):
    pred = torch.randn(1, 2, rows, keys, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    valid = torch.ones(rows, keys, dtype=torch.bool)
    ratios = torch.full((rows,), ratio, dtype=torch.float64)
    pick = sads_select(pred, valid, ratios, seg_len=keys, radius=float("inf"))
    want = max(math.ceil(ratio * keys - 1e-9), 2)
    assert torch.equal(pick.keep, keep_top_counts(pred, torch.full((rows,), want)))


@given(st.integers(1, 24), st.integers(0, 60), st.integers(1, 6), st.floats(0.05, 1.0), st.integers(0, 2**16))
def test_segments_keep_their_budget_and_the_predicted_top1(rows, extra, tc, ratio, seed):
    keys = rows + extra
    g = torch.Generator().manual_seed(seed)
    pred = torch.randn(1, 2, rows, keys, generator=g, dtype=torch.float64)
    valid = valid_mask(rows, keys, True)
    seg = math.ceil(keys / tc)
    pick = sads_select(pred, valid, torch.full((rows,), ratio, dtype=torch.float64), seg, float("inf"))
    assert not bool((pick.keep & ~valid).any())
    top1 = pred.masked_fill(~valid, float("-inf")).argmax(dim=-1, keepdim=True)
    assert bool(pick.keep.gather(-1, top1).all())  # the row's predicted maximum is always selected
    for s in range(0, keys, seg):  # per segment: ceil(ratio * valid), at least min(2, valid)
        n = valid[:, s : s + seg].sum(dim=-1)
        budget = torch.minimum(torch.clamp(torch.ceil(n * ratio - 1e-9), min=2), n).long()
        assert torch.equal(pick.keep[..., s : s + seg].sum(dim=-1), budget.expand(1, 2, rows))


def test_radius_clips_far_entries():
    pred = torch.tensor([[[[10.0, 9.5, 3.0, 2.0, 1.0, 0.0, -1.0, -2.0]]]], dtype=torch.float64)
    valid = torch.ones(1, 8, dtype=torch.bool)
    ratio = torch.tensor([0.5], dtype=torch.float64)
    wide = sads_select(pred, valid, ratio, 8, float("inf"))
    tight = sads_select(pred, valid, ratio, 8, 1.0)
    assert wide.keep[0, 0, 0].tolist() == [True, True, True, True, False, False, False, False]
    assert tight.keep[0, 0, 0].tolist() == [True, True, False, False, False, False, False, False]
    long = torch.linspace(10, -10, 64, dtype=torch.float64).view(1, 1, 1, 64)
    all64 = torch.ones(1, 64, dtype=torch.bool)
    far, near = (sads_select(long, all64, ratio, 64, r) for r in (float("inf"), 2.0))
    assert int(near.keep.sum()) == 7 and int(far.keep.sum()) == 32  # 10 - 2 = 8 clips all but 7 values
    assert near.steps < far.steps and near.compares < far.compares  # clipped values never reach the sorter


def test_method_reports_the_sads_mismatch_against_the_global_top_k():
    q, k, v = random_qkv(h=2, hkv=1, nq=64, nk=256, d=32, seed=3)
    one = sparseattn.attention(q, k, v, "sofa", Tc=1, k=0.25, min_keys=1, diagnostics=True).trace
    assert one.meta["sads_mismatch"]["mismatched"] == 0  # one segment is the global top-k
    four = sparseattn.attention(q, k, v, "sofa", Tc=4, k=0.25, min_keys=1, diagnostics=True).trace
    m = four.meta["sads_mismatch"]
    assert 0 < m["mismatched"] / m["selected"] < 0.3


# ------------------------------------------------------------------------------------------------ SU-FA
def masked_dense(q, k, v, keep):
    g = q.shape[1] // k.shape[1]
    s = (q @ k.repeat_interleave(g, dim=1).transpose(-1, -2)) / math.sqrt(q.shape[-1])
    return torch.softmax(s.masked_fill(~keep, float("-inf")), dim=-1) @ v.repeat_interleave(g, dim=1)


@given(
    st.integers(1, 40), st.integers(0, 40), st.booleans(), st.integers(1, 5), st.floats(0.05, 1.0), st.integers(0, 9)
)
def test_sofa_output_is_softmax_over_its_selection(nq, extra, causal, tc, ratio, seed):
    q, k, v = random_qkv(h=4, hkv=2, nq=nq, nk=nq + extra, d=16, seed=seed, spread=2.0)
    tc = min(tc, nq + extra)
    r = sparseattn.attention(q, k, v, "sofa", causal=causal, k=ratio, Tc=tc)
    assert not bool((r.keep & ~valid_mask(nq, nq + extra, causal)).any())  # never a future key
    assert bool(r.keep.any(dim=-1).all())
    torch.testing.assert_close(r.out, masked_dense(q, k, v, r.keep), atol=1e-5, rtol=1e-5)


@given(st.integers(0, 2**16))
def test_sufa_output_does_not_depend_on_the_tile_references(seed):
    g = torch.Generator().manual_seed(seed)
    b, h, c, w, d, seg = 1, 2, 6, 24, 8, 8
    scores = torch.randn(b, h, c, w, generator=g) * 3
    keep = torch.rand(b, h, c, w, generator=g) < 0.5
    keep[..., 0] = True
    v = torch.randn(b, h, w, d, generator=g)
    pred = torch.randn(b, h, c, w, generator=g)

    def refs():  # any kept key of each segment can serve as the visiting order's reference
        pick = torch.rand(b, h, c, w, generator=g).masked_fill(~keep, -1).view(b, h, c, 3, seg).argmax(-1)
        base = torch.arange(3).view(1, 1, 1, 3) * seg
        has = keep.view(b, h, c, 3, seg).any(-1)
        return torch.where(has, pick + base, torch.full_like(pick, -1))

    out1, c1 = sufa_attend(scores, keep, pred, refs(), refs(), v, seg, torch.float32)
    out2, _ = sufa_attend(scores, keep, pred, refs(), torch.full((b, h, c, 3), -1), v, seg, torch.float32)
    ref = torch.softmax(scores.masked_fill(~keep, float("-inf")), dim=-1) @ v
    torch.testing.assert_close(out1, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out2, ref, atol=1e-5, rtol=1e-5)
    desc, asc, fa2 = (c1.orders[o] for o in ("descending", "ascending", "fa2"))
    n = float(keep.sum())
    assert desc.exp >= n and fa2.compare >= n and asc.compare >= n
    assert asc.mul >= desc.mul - desc.rescales * (1 + d) + n  # ascending rescales at every element


def test_max_violations_are_counted_when_the_prediction_misorders_a_tile():
    scores = torch.tensor([[[[1.0, 5.0, 2.0, 0.0]]]])
    keep = torch.ones(1, 1, 1, 4, dtype=torch.bool)
    v = torch.eye(4).view(1, 1, 4, 4)
    pred = torch.tensor([[[[9.0, 1.0, 8.0, 0.0]]]])  # predicts key 0 then key 2 on top; key 1 is the true max
    out, counts = sufa_attend(scores, keep, pred, torch.tensor([[[[0]]]]), torch.tensor([[[[2]]]]), v, 4, torch.float32)
    desc = counts.orders["descending"]
    assert desc.violations == 1
    # visiting keys 0, 2, 1, 3 (predicted order) from the reference max(1, 2) = 2: only key 1 (5) raises it
    assert desc.rescales == 1 and desc.exp == 4 + 1 + 1  # 4 elements, the rescale, the tile merge
    torch.testing.assert_close(out, torch.softmax(scores, -1) @ v[0, 0])


@settings(max_examples=25)
@given(st.floats(1.0, 1e4), st.sampled_from(["sofa", "star"]), st.booleans(), st.integers(0, 2**16))
def test_sofa_output_is_finite_and_exact_on_the_kept_pairs_at_any_logit_scale(spread, method, causal, seed):
    """SOFA's max-update mode: a score far above its tile's predicted maximum never overflows (issue: std 30
    gave 80 non-finite outputs); the output is softmax over the kept pairs, and rescales are counted."""
    from sparseattn.core.attention import attend_kept, grouped_scores

    q, k, v = random_qkv(h=4, hkv=2, nq=40, nk=48, d=16, seed=seed)
    q, k = q * (spread / 4), k * 4  # logits of std ~ spread
    r32 = sparseattn.attention(q, k, v, method, causal=causal, k=0.3, Tc=3)
    assert bool(torch.isfinite(r32.out).all())
    q, k, v = q.double(), k.double(), v.double()  # exactness in float64 (float32 rounds logits of 1e4 by 1e-3)
    r = sparseattn.attention(q, k, v, method, causal=causal, k=0.3, Tc=3)
    ref = attend_kept(grouped_scores(q, k, 16**-0.5), r.keep, v, torch.float64)
    torch.testing.assert_close(r.out, ref, atol=1e-9, rtol=1e-9)
    desc = r.trace.record(SufaCounts).descending
    assert desc.rescales <= desc.violations


# ------------------------------------------------------------------------------------------------ RASS
def test_rass_lines_up_shared_keys():
    req = torch.zeros(3, 6, dtype=torch.bool)
    req[0, [0, 5]] = True
    req[1, 5] = True
    req[2, 5] = True
    naive, rass, unique = rass_loads(req, per_phase=1)
    assert (naive, rass, unique) == (3, 2, 2)
    same = torch.ones(4, 5, dtype=torch.bool)
    assert rass_loads(same, per_phase=1) == (5, 5, 5)


def test_rass_and_star_in_the_trace():
    q, k, v = random_qkv(h=4, hkv=2, nq=128, nk=128, d=16, seed=5)
    a = sparseattn.attention(q, k, v, "sofa", causal=True, k=0.3)
    b = sparseattn.attention(q, k, v, "star", causal=True, k=0.3)
    assert torch.equal(a.keep, b.keep) and torch.equal(a.out, b.out)  # PSP changes power only
    loads = a.trace.record(RassLoads)
    assert loads.unique_keys <= loads.rass_loads and loads.unique_keys <= loads.naive_loads
    neg = a.trace.meta["dlzs_negative_terms"]
    assert 0 < neg < a.trace.meta["dlzs_terms"]
    narrow = [key for key in b.trace.ops if key.stage == "predict" and key.op == "add" and key.bits == 8]
    assert narrow and b.trace.ops[narrow[0]] == neg and b.trace.meta["psp"] and not a.trace.meta["psp"]


# ------------------------------------------------------------------------------------------------ parameters
def test_per_layer_parameters_follow_the_layer_index():
    q, k, v = random_qkv(nq=64, nk=64)
    r = sparseattn.attention(q, k, v, "sofa", causal=True, layer=1, k=[0.5, 0.1], Tc=[2, 8], r=[1.0, 3.0])
    setting = r.trace.record(SadsSetting)
    assert (setting.k, setting.tc, setting.r, r.trace.meta["layer"]) == ([0.1], [8], [3.0], 1)
    with pytest.raises(InvalidParameterError, match="per-layer list"):
        sparseattn.attention(q, k, v, "sofa", k=[0.5, 0.1])
    with pytest.raises(InvalidParameterError, match="no entry for layer 2"):
        sparseattn.attention(q, k, v, "sofa", layer=2, k=[0.5, 0.1])


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"k": 0.0}, "greater than 0"),
        ({"k": 1.2}, "less than or equal to 1"),
        ({"k": [0.5, 1.5]}, "less than or equal to 1"),
        ({"Tc": 0}, "greater than or equal to 1"),
        ({"Tc": 65}, "exceed the 64 keys"),
        ({"r": 0.0}, "greater than 0"),
        ({"keys": "x"}, "keys"),
        ({"keys": "cross_phase"}, "side inputs"),
    ],
)
def test_bad_parameters(params, needle):
    q, k, v = random_qkv(nq=64, nk=64)
    with pytest.raises(ValueError, match=needle):
        sparseattn.attention(q, k, v, "sofa", causal=True, **params)


def test_non_finite_inputs_are_rejected():
    q, k, v = random_qkv()
    q[0, 0, 0, 0] = float("nan")
    with pytest.raises(InvalidInputError, match="NaN"):
        sparseattn.attention(q, k, v, "sofa")


# ------------------------------------------------------------------------------------------------ real model
def test_cross_phase_keys_track_the_real_keys(smollm):
    from sparseattn.eval import load_text
    from sparseattn.methods.sofa import SofaParams
    from sparseattn.methods.sofa.keys import predicted_keys
    from sparseattn.models import attention_layers, patch
    from sparseattn.models.layer import side_inputs

    ids = smollm.encode(load_text("moby-dick"), 128)
    with patch(smollm, "dense", layers=[7], capture_qkv=True) as p:
        smollm.model(ids)
        side = side_inputs(attention_layers(smollm.model)[7])
        real = p.qkv[7][0].k
        shape = sparseattn.attention(p.qkv[7][0].q, real, real, "dense", causal=True).trace.shape
        khat = predicted_keys(side, shape, SofaParams())
    cos = torch.nn.functional.cosine_similarity(khat, real, dim=-1)
    assert float(cos.mean()) > 0.9  # sign + exponent weights, INT8 inputs: close to the real post-RoPE keys


@pytest.mark.slow  # three SmolLM2 perplexity runs and a patched forward pass
def test_sofa_in_the_model_with_both_key_sources_and_per_layer_tiles(smollm):
    from sparseattn.eval import perplexity
    from sparseattn.models import patch

    dense = perplexity(smollm, "moby-dick", 256, "dense").ppl
    for keys in ("k", "cross_phase"):
        r = perplexity(smollm, "moby-dick", 256, "sofa", keys=keys, k=0.5)
        assert 0.5 < r.density < 0.6 and dense < r.ppl < dense * 1.1
    tcs = [2 + 2 * (i % 4) for i in range(30)]
    ids = smollm.encode("Call me Ishmael. " * 40, 128)
    with patch(smollm, "sofa", keys="cross_phase", Tc=tcs, k=0.3, capture_traces=True) as p:
        smollm.model(ids)
    assert [p.traces[i][0].record(SadsSetting).tc[0] for i in range(30)] == tcs
    w = p.traces[3][0]
    assert w.count(stage="kvgen", op="mac") > 0 and w.count(stage="other", op="mul") > 0  # K/V gen, RoPE
    assert w.count(stage="kvgen", op="mac") <= w.meta["kvgen_dense_macs"]  # one tile: at most every key once
