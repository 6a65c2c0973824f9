import json

import numpy as np
import pytest
import torch
from pydantic import ValidationError

import sparseattn
from sparseattn.core import OpKey, Per, Shape, Workload, total
from sparseattn.core.records import MissingRecordError, RassLoads, RecordError, SadsSetting, SufaCounts
from tests.helpers import random_qkv


def _trace(nq=40, nk=40, causal=True, ratio=0.3, seed=0, h=4, hkv=2):
    q, k, v = random_qkv(h=h, hkv=hkv, nq=nq, nk=nk, d=16, seed=seed)
    return sparseattn.attention(q, k, v, "topk", causal=causal, ratio=ratio)


def test_dense_trace_counts_the_dense_work_exactly():
    q, k, v = random_qkv(b=2, h=4, hkv=2, nq=24, nk=40, d=16)
    r = sparseattn.attention(q, k, v, "dense", causal=True)
    w = r.trace
    pairs = 2 * 4 * (24 * 16 + 24 * 25 // 2)  # batch * heads * (offset rows + triangle)
    assert w.shape.valid_pairs == pairs == w.kept_pairs
    assert w.ops[OpKey("qk", "mac", 32)] == pairs * 16
    assert w.ops[OpKey("pv", "mac", 32)] == pairs * 16
    assert w.ops[OpKey("softmax", "exp", 32)] == pairs
    assert w.ops[OpKey("softmax", "div", 32)] == 2 * 4 * 24
    assert w.density == 1.0 and w.meta["method"] == "dense"


def test_profile_sums_to_kept_pairs_and_coarsens_consistently():
    r = _trace(nq=50, nk=70)
    p = r.trace.profile
    assert p.counts.shape == (4, 4, 5)  # instances, ceil(50/16), ceil(70/16)
    assert p.kept_pairs == r.kept_pairs
    per_instance = r.keep.reshape(4, 50, 70).sum(dim=(1, 2)).numpy()
    assert np.array_equal(p.counts.sum(axis=(1, 2)), per_instance)
    coarse = p.coarsen(32, 64)
    assert coarse.shape == (4, 2, 2) and coarse.sum() == p.kept_pairs
    assert int(coarse[0, 0, 0]) == int(r.keep[0, 0, :32, :64].sum())
    assert p.group.tolist() == [0, 0, 1, 1]  # GQA: two query heads per KV head
    with pytest.raises(ValueError, match="multiple of the base tile"):
        p.coarsen(24)


def test_json_round_trip_is_lossless(tmp_path):
    w = _trace().trace
    w.extra_reads["k_bit_planes"] = 123.0
    path = tmp_path / "w.json"
    w.save(path)
    back = Workload.load(path)
    assert back.shape == w.shape and back.ops == w.ops and back.terms == w.terms
    assert np.array_equal(back.profile.counts, w.profile.counts)
    assert np.array_equal(back.profile.group, w.profile.group)
    assert back.extra_reads == w.extra_reads and back.meta == json.loads(json.dumps(w.meta))


def test_plus_stacks_layers():
    a, b = _trace(seed=1).trace, _trace(seed=2, ratio=0.5).trace
    s = a + b
    assert s.shape.layers == 2 and s.shape.replace(layers=1) == a.shape
    for key in a.ops:
        assert s.ops[key] == pytest.approx(a.ops[key] + b.ops[key])
    assert s.kept_pairs == a.kept_pairs + b.kept_pairs
    assert s.density == pytest.approx((a.kept_pairs + b.kept_pairs) / (2 * a.shape.valid_pairs))
    assert s.profile.group.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert total([a, b, a]).shape.layers == 3 and sum([a, b]).shape.layers == 2


def test_plus_refuses_different_shapes():
    with pytest.raises(ValueError, match="same per-layer shape"):
        _trace(nq=40, nk=40).trace + _trace(nq=32, nk=32).trace
    with pytest.raises(ValueError, match="at least one"):
        total([])


def test_concat_heads_merges_head_groups():
    a, b = _trace(h=2, hkv=1, seed=1).trace, _trace(h=2, hkv=1, seed=2).trace
    m = Workload.concat_heads(a, b)
    assert (m.shape.heads, m.shape.kv_heads) == (4, 2)
    assert m.kept_pairs == a.kept_pairs + b.kept_pairs
    assert m.profile.group.tolist() == [0, 0, 1, 1]


def test_scaled_to_scales_counts_by_basis_and_records_it():
    w = _trace(nq=64, nk=64, ratio=0.25).trace
    big = Shape(batch=1, heads=32, kv_heads=8, q_len=256, k_len=256, head_dim=128, causal=True, layers=4)
    s = w.scaled_to(big)
    pair_ratio = big.valid_pairs / w.shape.valid_pairs
    assert s.ops[OpKey("softmax", "exp", 32)] == pytest.approx(w.ops[OpKey("softmax", "exp", 32)] * pair_ratio)
    assert s.ops[OpKey("qk", "mac", 32)] == pytest.approx(w.ops[OpKey("qk", "mac", 32)] * pair_ratio * 128 / 16)
    assert s.ops[OpKey("softmax", "div", 32)] == pytest.approx(
        w.ops[OpKey("softmax", "div", 32)] * big.rows / w.shape.rows
    )
    assert s.source_shape == w.shape and s.measured_shape == w.shape and "density" in s.meta["scaling"]
    assert s.scaled_to(big.replace(layers=8)).source_shape == w.shape  # scaled twice: still the measured shape
    assert s.profile.counts.shape == (4 * 32, 16, 16)
    assert s.density == pytest.approx(w.density, rel=0.05)
    with pytest.raises(ValueError, match="causal"):
        w.scaled_to(big.replace(causal=False))


def test_add_validates_its_arguments():
    w = Workload(shape=Shape(batch=1, heads=1, kv_heads=1, q_len=4, k_len=4, head_dim=8, causal=False))
    w.add("predict", "shift", 4, 10, Per.PAIR_DIM).add("predict", "shift", 4, 5, "pair_dim")
    assert w.count(stage="predict") == 15
    with pytest.raises(ValueError, match="unknown stage"):
        w.add("guess", "add", 4, 1)
    with pytest.raises(ValueError, match="unknown op"):
        w.add("predict", "magic", 4, 1)
    with pytest.raises(ValueError, match="bits"):
        w.add("predict", "add", 0, 1)
    with pytest.raises(ValueError, match=">= 0"):
        w.add("predict", "add", 4, -1)
    w.add("predict", "shift", 4, 2, Per.ROW)  # the same op may scale by several bases
    assert w.ops[OpKey("predict", "shift", 4)] == 17 and len(w.terms) == 2
    assert w.drop("predict", "shift", 4) == 17 and w.count() == 0
    with pytest.raises(ValueError, match="no sparsity profile"):
        _ = w.density


def test_profile_of_a_broadcast_mask_equals_the_materialised_one():
    q, k, v = random_qkv(b=2, h=4, hkv=2, nq=33, nk=33, d=8)
    r = sparseattn.attention(q, k, v, "dense", causal=True)
    from sparseattn.core import SparsityProfile

    full = SparsityProfile.from_keep(r.keep.contiguous(), r.trace.shape)
    assert np.array_equal(full.counts, r.trace.profile.counts)
    assert int(torch.tensor(full.counts).sum()) == r.trace.shape.valid_pairs


def test_extra_reads_scale_by_their_own_basis():
    small = Shape(batch=1, heads=2, kv_heads=1, q_len=64, k_len=64, head_dim=16, causal=False)
    big = small.replace(q_len=128, k_len=128)
    w = (Workload(shape=small).add("qk", "mac", 16, 1.0, Per.PAIR_DIM)  # a trace has at least one op
         .add_read("planes", 100.0, Per.PAIR_DIM).add_read("k_like", 100.0))
    scaled = w.scaled_to(big)
    assert scaled.extra_reads["planes"] == pytest.approx(400.0)  # pairs grow 4x
    assert scaled.extra_reads["k_like"] == pytest.approx(200.0)  # keys grow 2x
    back = Workload.from_json(json.loads(json.dumps(scaled.to_json())))
    assert back.basis_of_read("planes") is Per.PAIR_DIM and back.extra_reads == scaled.extra_reads
    with pytest.raises(ValueError, match="already scales"):
        w.add_read("planes", 1.0, Per.KEY_DIM)
    with pytest.raises(ValueError, match="finite"):
        w.add_read("bad", float("nan"))


# ------------------------------------------------------------------------------------------------ typed records
def _sofa_layer(layer: int, **params):
    q, k, v = random_qkv(h=2, hkv=1, nq=48, nk=48, d=16, seed=layer)
    return sparseattn.attention(q, k, v, "sofa", causal=True, layer=layer, **params).trace


def test_records_stack_by_their_rules_and_survive_scaling():
    """Counts add over stacked layers, per-layer settings concatenate, widths must agree; scaling keeps the
    measured records and says where they were measured."""
    a, b = _sofa_layer(0, Tc=[2, 3]), _sofa_layer(1, Tc=[2, 3])
    both = a + b
    assert both.record(SadsSetting).tc == [2, 3] and both.record(SadsSetting).k == [0.25, 0.25]
    for order in ("descending", "ascending", "fa2"):
        for op in ("exp", "pv_mac", "mul"):
            total = getattr(a.record(SufaCounts).order(order), op) + getattr(b.record(SufaCounts).order(order), op)
            assert getattr(both.record(SufaCounts).order(order), op) == pytest.approx(total)
    assert both.record(RassLoads).rass_loads == a.record(RassLoads).rass_loads + b.record(RassLoads).rass_loads
    with pytest.raises(RecordError, match="needs one SADS tc"):
        both.record(SadsSetting).uniform("tc", "a model")
    wide = _sofa_layer(1, formal_bits=32)
    with pytest.raises(RecordError, match="sufa_counts records whose bits differ"):
        _ = a + wide
    big = a.shape.replace(q_len=96, k_len=96)
    scaled = a.scaled_to(big)
    assert scaled.records == a.records and scaled.source_shape == a.shape
    heads = Workload.concat_heads(a, a)  # more heads of the same layer: per-layer settings agree, counts add
    assert heads.record(SadsSetting).tc == [2]
    assert heads.record(SufaCounts).fa2.exp == 2 * a.record(SufaCounts).fa2.exp


def test_a_record_only_one_stacked_layer_has_is_dropped_and_asked_for_clearly():
    dense = sparseattn.attention(*random_qkv(h=2, hkv=1, nq=48, nk=48, d=16, seed=0), "dense", causal=True).trace
    with pytest.raises(MissingRecordError, match=r"needs the SufaCounts record \('sufa_counts'\), which this "
                                                 r"'dense' trace does not carry \(it has: no records\)"):
        dense.record(SufaCounts, "a test")
    mixed = _sofa_layer(0) + dense  # the dense layer has no SU-FA counts: the stack's would be wrong, so none
    assert mixed.records == {}
    with pytest.raises(MissingRecordError, match="'sofa\\+dense' trace does not carry"):
        mixed.record(SufaCounts)
    with pytest.raises(ValueError, match="already carries"):
        dense.put(RassLoads(naive_loads=1.0, rass_loads=1.0, unique_keys=1.0)).put(
            RassLoads(naive_loads=1.0, rass_loads=1.0, unique_keys=1.0))


def test_a_typo_d_counter_fails_where_it_is_written():
    with pytest.raises(ValidationError, match="rass_load"):
        RassLoads(naive_loads=1.0, rass_load=1.0, unique_keys=1.0)
    with pytest.raises(ValidationError, match="Field required"):
        RassLoads(naive_loads=1.0, unique_keys=1.0)
    with pytest.raises(ValidationError, match="finite"):
        RassLoads(naive_loads=float("nan"), rass_loads=1.0, unique_keys=1.0)
