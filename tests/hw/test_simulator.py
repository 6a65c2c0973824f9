import csv
import io
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sparseattn.hw import (
    AreaItem,
    ConfigError,
    EnergyItem,
    SimResult,
    load_arch,
    load_model_shape,
    load_trace,
    replicate,
    simulate,
    trace_for,
    with_density,
)
from sparseattn.hw.binding import bind, passes, peak_formal_ops
from sparseattn.hw.normalise import iso, pe_array_area_mm2
from sparseattn.hw.registry import arch_kind
from sparseattn.hw.replicate import split_heads
from tests.hw.conftest import tiny_arch

LLAMA_2K = load_model_shape("llama2-7b").shape(2048)


def test_dense_on_the_tiny_array_counts_cycles_by_hand(dense_trace):
    arch = tiny_arch()
    r = simulate(arch, dense_trace)
    macs = 2 * dense_trace.shape.valid_pairs * 64  # Q.K^T and P.V, 64-wide
    normalise = dense_trace.count(stage="pv", op="mul")  # the final 1/l scaling of each output row
    assert normalise == 2 * 256 * 64
    assert r.stage_cycles["qk"] + r.stage_cycles["pv"] == pytest.approx((macs + normalise) / 64)  # 64 PEs
    assert r.cycles >= macs / 64  # plus softmax, pipelined on its own unit
    dram_cycles = sum(r.dram_bytes.values()) / 64e9 * 1e9  # 64 GB/s at 1 GHz, 100% attained
    assert r.stage_cycles["memory"] == pytest.approx(dram_cycles)
    assert r.cycles >= max(macs / 64, dram_cycles)
    assert r.latency_s == pytest.approx(r.cycles / 1e9)
    serial = simulate(arch, dense_trace, mapping=arch.mapping.model_copy(update={"stage_overlap": False}))
    assert serial.cycles >= r.cycles  # stages one after another never beat overlapped stages


def test_energy_and_area_are_records_that_sum_to_the_totals():
    r = simulate(load_arch("pade"), load_trace("pade"), LLAMA_2K)
    assert all(isinstance(e, EnergyItem) for e in r.energy) and all(isinstance(a, AreaItem) for a in r.area)
    assert sum(r.energy_by("component").values()) * 1e-12 == pytest.approx(r.energy_j)
    assert set(r.energy_by("kind")) == {"compute", "sram", "dram", "leakage"}
    assert sum(r.area_by("kind").values()) == pytest.approx(r.total_area_mm2)
    assert r.power_w == pytest.approx(r.energy_j / r.latency_s)
    assert {"dram", "static", "qk_lanes", "v_pu", "kv"} <= set(r.energy_by("component"))
    qk = [e for e in r.energy if e.component == "qk_lanes"]
    assert {e.stage for e in qk} == {"qk"} and {e.action for e in qk} == {"add", "shift"}
    assert r.energy_by("stage")["qk"] == pytest.approx(sum(e.pj for e in qk))
    dram = {e.tensor: e.action for e in r.energy if e.kind == "dram"}
    assert dram["o"] == "write" and dram["k"] == "read"
    assert r.on_chip_energy_j() == pytest.approx(r.energy_j - r.energy_by("kind")["dram"] * 1e-12)
    assert 0 < max(r.utilisation.values()) <= 1.0 + 1e-9
    assert r.energy_pj["qk_lanes/qk:add8"] > 0 and r.energy_pj["dram/read:k"] > 0  # display labels


def test_simulation_is_deterministic_and_serialises():
    a = simulate(load_arch("sofa"), load_trace("sofa"), LLAMA_2K)
    b = simulate(load_arch("sofa"), load_trace("sofa"), LLAMA_2K)
    assert json.dumps(a.to_json(), sort_keys=True) == json.dumps(b.to_json(), sort_keys=True)
    rows = list(csv.reader(io.StringIO(a.to_csv())))
    assert rows[0] == ["section", "key", "value"]
    assert {r[0] for r in rows[1:]} >= {"summary", "energy_pj", "area_mm2", "dram_bytes", "utilisation"}
    data = json.loads(json.dumps(a.to_json()))
    assert data["summary"]["latency_ms"] == pytest.approx(a.latency_s * 1e3)
    assert data["mapping"]["formal"] == {"q": 128, "k": 64}
    back = SimResult.from_json(data)
    assert back.energy == a.energy and back.area == a.area and back.energy_j == a.energy_j


@settings(max_examples=8, deadline=None)
@given(lo=st.floats(0.02, 0.9), step=st.floats(0.01, 0.5), arch=st.sampled_from(["pade", "sofa", "sanger", "dota"]))
def test_more_density_never_costs_less(lo, step, arch):
    hi = min(1.0, lo + step)
    a = load_arch(arch)
    trace = trace_for(a, causal=True)
    shape = load_model_shape("opt-1.3b").shape(1024)
    low = simulate(a, with_density(trace, lo), shape)
    high = simulate(a, with_density(trace, hi), shape)
    assert high.latency_s >= low.latency_s * (1 - 1e-9)
    assert high.energy_j >= low.energy_j * (1 - 1e-9)
    assert sum(high.dram_bytes.values()) >= sum(low.dram_bytes.values()) * (1 - 1e-9)


def test_bandwidth_bound_runs_scale_with_bandwidth(dense_trace):
    slow = tiny_arch().model_copy(update={"dram": tiny_arch().dram.model_copy(update={"gbps": 0.5})})
    slower = tiny_arch().model_copy(update={"dram": tiny_arch().dram.model_copy(update={"gbps": 0.25})})
    a, b = simulate(slow, dense_trace), simulate(slower, dense_trace)
    assert a.compute_bound_fraction == 0
    assert b.latency_s == pytest.approx(2 * a.latency_s, rel=1e-3)
    serial = simulate(slow, dense_trace, mapping=slow.mapping.model_copy(update={"double_buffered": False}))
    assert a.cycles == pytest.approx(a.stage_cycles["memory"])  # double buffered: compute hides under memory
    assert serial.cycles > serial.stage_cycles["memory"] * 1.01  # single buffered: compute adds to it


def test_unbound_operations_are_named(dense_trace):
    arch = tiny_arch()
    arch = arch.model_copy(update={"units": [arch.units[0]]})  # drop the unit that runs softmax
    with pytest.raises(ConfigError, match=r"no unit that executes \['softmax/add/32'.*softmax/exp/32"):
        simulate(arch, dense_trace)


def test_bindings_are_typed_and_spread_kept_work_by_kept_pairs(dense_trace):
    bindings = bind(tiny_arch(), dense_trace)
    by = {(b.stage, b.op, b.per.value): b for b in bindings}
    assert by[("qk", "mac", "pair_dim")].unit.name == "pe" and by[("qk", "mac", "pair_dim")].spread == "kept"
    assert by[("pv", "mul", "row_dim")].spread == "row"
    assert all(b.count > 0 for b in bindings)


def test_wide_operations_take_bit_sliced_passes_and_subword_packs():
    unit = load_arch("dota").units[0]  # 16-bit RMMU, subword
    assert passes(unit, 32) == 2 and passes(unit, 4) == 0.25 and passes(unit, 16) == 1
    lanes = load_arch("pade").units[0]
    assert passes(lanes, 4) == 1  # not subword


def test_iso_normalisation_applies_pade_table_iii():
    pade_area = pe_array_area_mm2(load_arch("pade"), 28)
    for name in ("sanger", "dota", "sofa", "spatten"):
        a = iso(load_arch(name))
        assert (a.node_nm, a.clock_mhz, a.dram.gbps, a.dram.kind) == (28, 800, 256, "hbm2")
        assert a.sram_kb == pytest.approx(352)
        assert pe_array_area_mm2(a, 28) == pytest.approx(pade_area, rel=0.15)  # PE counts round to integers
        assert a.normalised.startswith("iso-pade") and a.mapping == load_arch(name).mapping
    r = simulate(iso(load_arch("sanger")), load_trace("sanger"), LLAMA_2K)
    assert r.normalised.startswith("iso-pade") and r.clock_mhz == 800
    with pytest.raises(ConfigError, match="iso normalises accelerators; 'h100' is of kind 'gpu'"):
        iso(load_arch("h100"))


def test_gqa_workloads_read_less_kv_than_mha():
    mha = simulate(load_arch("sanger"), load_trace("sanger"), load_model_shape("llama2-7b").shape(2048))
    gqa = simulate(load_arch("sanger"), load_trace("sanger"), load_model_shape("llama3-8b").shape(2048))
    assert gqa.dram_bytes["v"] < mha.dram_bytes["v"]


def test_peak_formal_ops_counts_the_formal_units():
    assert peak_formal_ops(load_arch("sofa")) == pytest.approx(2 * 512 * 1e9)  # SA-1 + SA-2, 256 PEs each
    assert peak_formal_ops(load_arch("pade")) == pytest.approx(2 * (128 * 41 / 8 + 256) * 800e6)
    assert peak_formal_ops(tiny_arch()) == pytest.approx(2 * 64 * 1e9)


def test_simulate_takes_names_and_rejects_other_things():
    by_name = simulate("sanger", "sanger", LLAMA_2K)
    assert by_name.latency_s == simulate(load_arch("sanger"), load_trace("sanger"), LLAMA_2K).latency_s
    with pytest.raises(ConfigError, match="trace must be a Workload"):
        simulate("sanger", 42, LLAMA_2K)
    with pytest.raises(ConfigError, match="arch must be an architecture"):
        simulate(3.5, "sanger", LLAMA_2K)
    with pytest.raises(ConfigError, match="unknown architecture"):
        simulate("tpu", "sanger", LLAMA_2K)


def test_dispatch_by_kind_and_the_one_gpu_rule():
    assert arch_kind(load_arch("pade")).name == "accelerator" and arch_kind("gpu").name == "gpu"
    h100 = load_arch("h100")
    dense = simulate(h100, "dense", LLAMA_2K)
    sparse = simulate(h100, "pade", LLAMA_2K)  # a GPU runs dense attention whatever trace it is handed
    assert sparse.latency_s == dense.latency_s and sparse.method == "dense" and sparse.kind == "gpu"
    assert any("sparsity is not used" in n for n in sparse.notes)
    assert trace_for(h100, causal=False).meta["method"] == "dense"
    assert simulate(h100, "dense").shape == load_trace("dense").shape.to_dict()  # shape defaults to the trace's
    with pytest.raises(ConfigError, match="'h100' is a GPU: it takes no mapping"):
        simulate(h100, "dense", LLAMA_2K, load_arch("sofa").mapping)


def test_replication_splits_heads_explicitly():
    sofa = load_arch("sofa")
    one = simulate(sofa, "sofa", LLAMA_2K)
    two = simulate(replicate(sofa, 2), "sofa", LLAMA_2K)
    half = simulate(sofa, "sofa", LLAMA_2K.replace(heads=16, kv_heads=16))
    assert two.latency_s == pytest.approx(half.latency_s, rel=1e-9)  # each copy runs half the heads
    assert two.cycles == pytest.approx((one.cycles - one.fixed_cycles) / 2 + one.fixed_cycles)
    assert two.total_area_mm2 == pytest.approx(2 * one.total_area_mm2)
    dynamic = lambda r: sum(e.pj for e in r.energy if e.kind != "leakage")  # noqa: E731
    assert dynamic(two) == pytest.approx(dynamic(one))
    assert two.energy_by("kind")["leakage"] == pytest.approx(2 * one.energy_by("kind")["leakage"] * two.latency_s
                                                             / one.latency_s)
    assert split_heads(one, 2).latency_s == two.latency_s and two.arch == "2x sofa"
    gpu = simulate(replicate(load_arch("h100"), 4), "dense", LLAMA_2K)
    assert gpu.latency_s == pytest.approx(simulate("h100", "dense", LLAMA_2K).latency_s / 4)
    with pytest.raises(ConfigError, match=r"33 copies cannot split 32 KV heads"):
        split_heads(one, 33)
    with pytest.raises(ConfigError, match=r"replicate: copies must be >= 1, got 0.5"):
        replicate(sofa, 0.5)
