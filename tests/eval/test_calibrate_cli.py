"""``sparseattn calibrate``: a small real run writes its table and files; bad input is one line and exit code 2."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from sparseattn.cli import app
from sparseattn.cli.calibrate_cmd import parse_budgets
from sparseattn.core.errors import SparseAttnError

runner = CliRunner()


def test_budgets_parse_as_percent_or_fraction():
    assert parse_budgets("2%, 1%") == [0.01, 0.02]
    assert parse_budgets("0.02") == [0.02]
    for bad in ("abc", "0", "100%", "1.5", ","):
        with pytest.raises(SparseAttnError, match="--budget"):
            parse_budgets(bad)


@pytest.mark.parametrize(("args", "message"), [
    (["--budget", "abc"], "not a number"),
    (["--methods", "dense"], "no density knob"),
    (["--methods", "nope"], "unknown method"),
    (["--text", "sotu", "--calib-text", "sotu"], "same tokens"),
    (["--text", "hamlet"], "unknown text"),
])
def test_bad_input_is_one_line_and_exit_2(smollm, tmp_path, args, message):
    result = runner.invoke(app, ["calibrate", "--tokens", "32", "--cache", str(tmp_path), *args],
                           terminal_width=200)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_a_small_calibration_writes_its_table(smollm, tmp_path):
    out = tmp_path / "out"
    args = ["calibrate", "--methods", "topk", "--budget", "2%", "--tokens", "48", "--layers", "0,10,20",
            "--cache", str(tmp_path / "cache"), "--out", str(out)]
    result = runner.invoke(app, args, terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "min left" in result.output and "judged" in result.output
    (row,) = json.loads((out / "calibration.json").read_text())
    assert row["method"] == "topk" and row["calib_text"] == "sotu" and row["judge_text"] == "moby-dick"
    assert row["reached"] is (row["calib_loss"] <= 0.02)
    assert "| topk | 2.0% |" in (out / "calibration.md").read_text()


def test_the_bundled_encoder_calibrates_from_the_cli(tmp_path):
    """MiniLM end to end: the budget is 1 - cosine (2% = cosine 0.98), shown as the cosine kept; short passages."""
    out = tmp_path / "out"
    args = ["calibrate", "--model", "minilm-l6", "--methods", "topk", "--budget", "2%", "--tokens", "32",
            "--cache", str(tmp_path / "cache"), "--out", str(out)]
    result = runner.invoke(app, args, terminal_width=200)
    assert result.exit_code == 0, result.output
    (row,) = json.loads((out / "calibration.json").read_text())
    assert row["kind"] == "encoder" and row["model"] == "minilm-l6" and row["budget"] == 0.02
    assert row["reached"] is (row["calib_loss"] <= 0.02) and 0 < row["calib_density"] <= 1
    md = (out / "calibration.md").read_text()
    assert "1 - cosine (cal)" in md and "| topk | cosine >= 0.98 |" in md
