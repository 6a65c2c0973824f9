"""The simulator at extreme sizes: a result is computed exactly or refused past the stated bound, never a
negative or non-finite physical quantity; short sequences on a mesh (fewer key cells than cores) simulate."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from sparseattn.cli import app
from sparseattn.core.invariants import MAX_SEQ, ResultInvariantError, check_sim_result
from sparseattn.hw import load_arch, load_model_shape, simulate, trace_for
from sparseattn.hw.spatial import sweep

runner = CliRunner()


@pytest.mark.parametrize("seq", [200_000_000_000, 10**12, 2**40])
def test_simulate_past_the_bound_is_refused(seq):
    result = runner.invoke(app, ["simulate", "--arch", "sofa", "--seq", str(seq)], terminal_width=200)
    assert result.exit_code == 2, result.output
    assert f"--seq {seq}" in result.output and "validated up to" in result.output
    assert "Traceback" not in result.output


def test_simulate_at_the_bound_is_quadratic_and_physical():
    a = load_arch("sofa")
    small, big = (simulate(a, trace_for(a, True), load_model_shape("llama2-7b").shape(s)) for s in (2**20, MAX_SEQ))
    ratio = (MAX_SEQ / 2**20) ** 2
    for name in ("energy_j", "latency_s"):
        got = getattr(big, name) / getattr(small, name)
        assert got == pytest.approx(ratio, rel=0.01), name
    assert all(v >= 0 for v in big.dram_bytes.values())


def test_spatial_past_the_bound_is_refused(tmp_path):
    result = runner.invoke(app, ["spatial", "--seq", str(2 * 10**12), "--no-scaling", "--arch", "spatial-star-4x4",
                                 "--shape", "llama2-7b", "--out", str(tmp_path / "o")], terminal_width=200)
    assert result.exit_code == 2, result.output
    assert "validated up to" in result.output


def test_a_huge_trace_count_never_reaches_the_json(tmp_path):
    from sparseattn.core import Workload

    a = load_arch("sofa")
    data = trace_for(a, True).to_json()
    data["ops"][0]["count"] = 1e308
    path = tmp_path / "huge.json"
    path.write_text(json.dumps(data))
    out = tmp_path / "r.json"
    result = runner.invoke(app, ["simulate", "--arch", "sofa", "--trace", str(path), "--json", str(out)],
                           terminal_width=200)
    assert result.exit_code == 2, result.output
    assert "not finite" in result.output or "out of the range" in result.output
    assert not out.exists()
    with pytest.raises(ResultInvariantError, match="largest op count is predict/add"):
        simulate(a, Workload.load(path), load_model_shape("llama2-7b").shape(4096))


@pytest.mark.parametrize(("mesh", "seq"), [("spatial-star-4x4", 16), ("spatial-star-4x4", 100),
                                           ("spatial-star-4x4", 256), ("spatial-star-4x4", 512),
                                           ("spatial-star-8x8", 1000)])
def test_short_sequences_on_a_mesh_simulate(mesh, seq):
    row, result = sweep.run_point(sweep.Point(mesh, "llama2-7b", seq, "spatial-star"))
    assert row["latency_s"] > 0 and row["energy_j"] > 0
    check_sim_result(result)


def test_short_sequence_on_a_mesh_through_simulate_and_the_api():
    cli = runner.invoke(app, ["simulate", "--arch", "spatial-star-4x4", "--seq", "100"], terminal_width=200)
    assert cli.exit_code == 0, cli.output
    a = load_arch("spatial-star-4x4")
    r = simulate(a, trace_for(a, True), load_model_shape("llama2-7b").shape(100))
    assert r.latency_s > 0


def test_mesh_latency_grows_with_sequence_length():
    rows, _ = sweep.run(sweep.sweep_points(["spatial-star-4x4"], ["llama2-7b"], [16, 100, 256, 512, 4096],
                                           ["spatial-star"]))
    lat = [r["latency_s"] for r in rows]
    assert lat == sorted(lat)


def test_spatial_carries_the_hbm_capacity_warning(tmp_path):
    """A mesh whose HBM cannot hold one layer's Q, K, V, O warns in spatial's terminal, JSON and CSV as in
    simulate."""
    import yaml

    from sparseattn.hw.spatial.schema import CONFIG_DIR

    data = yaml.safe_load((CONFIG_DIR / "spatial-star-2x2.yaml").read_text())
    data["hbm"]["capacity_gb"] = 0.001
    path = tmp_path / "tiny-hbm.yaml"
    path.write_text(yaml.safe_dump(data))
    sim = runner.invoke(app, ["simulate", "--arch", str(path), "--seq", "4096"], terminal_width=200)
    assert sim.exit_code == 0 and "warning" in sim.output, sim.output
    out = tmp_path / "o"
    result = runner.invoke(app, ["spatial", "--arch", str(path), "--shape", "llama2-7b", "--seq", "4096",
                                 "--design", "spatial-star", "--no-scaling", "--out", str(out)], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "more than the" in result.output
    rows = json.loads((out / "spatial.json").read_text())["rows"]
    assert "more than the" in rows[0]["warnings"]
    assert "more than the" in (out / "spatial.csv").read_text()


def test_the_mesh_at_the_bound_is_quadratic():
    small, big = (sweep.run_point(sweep.Point("spatial-star-4x4", "llama2-7b", s, "spatial-star"))[0]
                  for s in (2**20, MAX_SEQ))
    ratio = (MAX_SEQ / 2**20) ** 2
    assert big["latency_s"] / small["latency_s"] == pytest.approx(ratio, rel=0.01)
    assert big["energy_j"] / small["energy_j"] == pytest.approx(ratio, rel=0.01)
