"""Options are honoured or refused, and output paths are checked before any work: ``simulate --technology`` on a
GPU (whose energy is its board power) is refused rather than ignored; ``--out FILE/sub`` is a one-line error from
every command that writes a directory, before it computes anything."""

from __future__ import annotations

import time

import pytest
from typer.testing import CliRunner

from sparseattn.cli import app

runner = CliRunner()


def test_simulate_refuses_a_technology_file_a_gpu_ignores(tmp_path):
    from sparseattn.hw.schema import CONFIG_DIR

    tech = tmp_path / "tech.yaml"
    tech.write_text((CONFIG_DIR / "technology.yaml").read_text())
    result = runner.invoke(app, ["simulate", "--arch", "h100", "--technology", str(tech)], terminal_width=200)
    assert result.exit_code == 2, result.output
    assert "--technology" in result.output and "GPU" in result.output


OUT_COMMANDS = {
    "run": ["run", "--quick"],
    "sweep": ["sweep", "--tokens", "64"],
    "reproduce": ["reproduce", "--paper", "sofa"],
    "spatial": ["spatial", "--arch", "spatial-star-2x2", "--shape", "llama2-7b", "--seq", "4096", "--no-scaling"],
    "dse": ["dse", "run", "star-tiling", "--n-trials", "1", "--workers", "1", "--no-progress"],
}


@pytest.mark.parametrize("command", list(OUT_COMMANDS))
def test_out_below_a_file_is_refused_before_any_work(tmp_path, command):
    (tmp_path / "file").write_text("x")
    start = time.perf_counter()
    result = runner.invoke(app, [*OUT_COMMANDS[command], "--out", str(tmp_path / "file" / "sub")],
                           terminal_width=200)
    assert result.exit_code == 2, result.output
    assert "--out" in result.output and "is a file" in result.output, result.output
    assert "Traceback" not in result.output
    assert time.perf_counter() - start < 20  # refused up front, not after computing
