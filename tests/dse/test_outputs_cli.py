"""`sparseattn dse run` end to end: best configurations as architecture YAML that `sparseattn simulate` runs to the
same numbers, the trials CSV, the Pareto and convergence plots, the summary; and SOFA's objective's arithmetic."""

from __future__ import annotations

import csv
import json

import pytest
from typer.testing import CliRunner

from sparseattn.cli import app
from sparseattn.dse import PAPER_ALPHA_BETA, sofa_terms
from sparseattn.hw import load_arch, load_model_shape, simulate, trace_for

from .conftest import SMALL, write_space


def test_cli_run_writes_outputs_ready_for_simulate(tmp_path):
    space_file = write_space(tmp_path, SMALL)
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["dse", "run", str(space_file), "--sampler", "grid", "--n-trials", "100",
                                   "--workers", "1", "--out", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "the grid has 16 points" in res.output
    rows = list(csv.DictReader((out / "trials.csv").open()))
    assert len(rows) == 16 and {r["state"] for r in rows} == {"COMPLETE"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["finished"] == 16 and summary["baseline"]["feasible"]
    assert (out / "pareto.png").stat().st_size > 10_000 and (out / "convergence.png").stat().st_size > 5_000
    fronts = sorted(out.glob("pareto-*.yaml"))
    assert fronts and len(fronts) == len(summary["best"])
    arch, shape = load_arch(fronts[0]), load_model_shape("llama2-7b").shape(4096)
    best = summary["best"][0]
    assert (arch.mapping.formal.q, arch.mapping.formal.k) == (best["point"]["q_tile"], best["point"]["k_tile"])
    again = simulate(arch, trace_for(arch, True), shape).summary()
    assert again["latency_ms"] == pytest.approx(best["objectives"]["latency_ms"], rel=1e-12)
    res = CliRunner().invoke(app, ["simulate", "--arch", str(fronts[0]), "--shape", "llama2-7b", "--seq", "4096"])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(app, ["dse", "report", str(space_file), "--storage", f"sqlite:///{out / 'study.db'}",
                                   "--study", "small-test", "--out", str(tmp_path / "report")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "report" / "trials.csv").read_text() == (out / "trials.csv").read_text()


def test_cli_reports_bad_spaces_cleanly(tmp_path):
    bad = write_space(tmp_path, {**SMALL, "parameters": [{"path": "mapping.formal.k", "low": 64, "high": 16}]})
    res = CliRunner().invoke(app, ["dse", "check", str(bad)])
    assert res.exit_code == 2 and "empty range" in res.output


def test_sofa_objective_terms():
    # Eq. 3-4 with S cancelled: L_cmp = sum(k_i / Tc_i) / sum(k_i); L_exp = sum(Tc_i)
    t = sofa_terms(2.0, {"k": 0.2, "Tc": [4, 4, 8]}, [0, 2], *PAPER_ALPHA_BETA["llama-7b"])
    assert t.l_cmp == pytest.approx((0.2 / 4 + 0.2 / 8) / 0.4)
    assert t.l_exp == 12
    assert t.total == pytest.approx(2.0 + 0.58 * t.l_cmp + 0.63 * 12)
    n = sofa_terms(2.0, {"k": [0.1, 0.3], "Tc": 16}, [0, 1], 0.4, 0.42, exp_cost="normalised")
    assert n.l_exp == pytest.approx(32 / 64) and n.l_cmp == pytest.approx(1 / 16)
