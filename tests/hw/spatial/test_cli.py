"""The command line: ``sparseattn simulate --arch <mesh>.yaml`` and the ``sparseattn spatial`` sweep."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from sparseattn.cli import app
from sparseattn.hw.spatial import mesh_path

runner = CliRunner()


def test_simulate_a_mesh_yaml(tmp_path):
    out = tmp_path / "r.json"
    result = runner.invoke(app, ["simulate", "--arch", str(mesh_path("spatial-star-4x4")), "--shape", "llama2-7b",
                                 "--seq", "4096", "--json", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["kind"] == "mesh" and data["tokens_per_s"] > 0 and len(data["core_utilisation"]) == 4
    assert "noc" in {e["kind"] for e in data["energy"]}


def test_spatial_sweep_writes_json_csv_and_figures(tmp_path):
    result = runner.invoke(app, ["spatial", "--arch", "spatial-star-2x2", "--shape", "llama3-8b", "--seq", "4096",
                                 "--seq", "8192", "--no-scaling", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "spatial.json").read_text())
    assert len(data["rows"]) == 6 and {r["baseline"] for r in data["ratios"]} == {"dense-flash", "stage-isolated"}
    assert "tokens_per_s" in (tmp_path / "spatial.csv").read_text().splitlines()[0]
    for fig in ("spatial_throughput.png", "spatial_utilisation.png", "spatial_energy.png"):
        assert (tmp_path / fig).stat().st_size > 1000


def test_spatial_rejects_an_unknown_design(tmp_path):
    result = runner.invoke(app, ["spatial", "--design", "nope", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "unknown" in result.output
