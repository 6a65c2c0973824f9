import csv
import io
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sparseattn.hw import ConfigError, load_arch, load_model_shape, load_trace, simulate, with_density
from sparseattn.hw.normalise import iso, pe_array_area_mm2
from sparseattn.hw.simulator import passes
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


def test_energy_and_area_sum_to_their_breakdowns():
    r = simulate(load_arch("pade"), load_trace("pade"), LLAMA_2K)
    assert sum(r.energy_by_component().values()) * 1e-12 == pytest.approx(r.energy_j)
    assert sum(r.area_mm2.values()) == pytest.approx(r.total_area_mm2)
    assert r.power_w == pytest.approx(r.energy_j / r.latency_s)
    assert {"dram", "static", "qk_lanes", "v_pu"} <= set(r.energy_by_component())
    assert 0 < max(r.utilisation.values()) <= 1.0 + 1e-9


def test_simulation_is_deterministic_and_serialises():
    a = simulate(load_arch("sofa"), load_trace("sofa"), LLAMA_2K)
    b = simulate(load_arch("sofa"), load_trace("sofa"), LLAMA_2K)
    assert json.dumps(a.to_json(), sort_keys=True) == json.dumps(b.to_json(), sort_keys=True)
    rows = list(csv.reader(io.StringIO(a.to_csv())))
    assert rows[0] == ["section", "key", "value"]
    assert {r[0] for r in rows[1:]} >= {"summary", "energy_pj", "area_mm2", "dram_bytes", "utilisation"}
    assert json.loads(json.dumps(a.to_json()))["summary"]["latency_ms"] == pytest.approx(a.latency_s * 1e3)


@settings(max_examples=8)
@given(lo=st.floats(0.02, 0.9), step=st.floats(0.01, 0.5), arch=st.sampled_from(["pade", "sofa", "sanger", "dota"]))
def test_more_density_never_costs_less(lo, step, arch):
    hi = min(1.0, lo + step)
    a = load_arch(arch)
    trace = load_trace(a.method)
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


def test_unmapped_operations_are_named(dense_trace):
    arch = tiny_arch()
    arch = arch.model_copy(update={"units": [arch.units[0]]})  # drop the unit that runs softmax
    with pytest.raises(ConfigError, match=r"no unit that executes \['softmax/add/32'.*softmax/exp/32"):
        simulate(arch, dense_trace)


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
        assert a.normalised.startswith("iso-pade")
    r = simulate(iso(load_arch("sanger")), load_trace("sanger"), LLAMA_2K)
    assert r.normalised.startswith("iso-pade") and r.clock_mhz == 800


def test_gqa_workloads_read_less_kv_than_mha():
    trace = load_trace("pade")
    mha = simulate(load_arch("sanger"), load_trace("sanger"), load_model_shape("llama2-7b").shape(2048))
    gqa = simulate(load_arch("sanger"), load_trace("sanger"), load_model_shape("llama3-8b").shape(2048))
    assert gqa.dram_bytes["v"] < mha.dram_bytes["v"]
    assert trace.profile is not None


def test_peak_formal_ops_counts_the_formal_units():
    from sparseattn.hw.simulator import peak_formal_ops

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
