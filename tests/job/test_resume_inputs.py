"""``run --resume`` never mixes inputs: a results.json made from a text (or model) whose content has changed
since is refused naming what changed, before any model loads; a results.json that is valid JSON but of the wrong
shape is refused as corrupt, not a traceback."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from sparseattn.cli import app
from sparseattn.job.config import load_config
from sparseattn.job.store import ResultStore

runner = CliRunner()


def _made_with(tmp_path, text_file):
    cfg = load_config(None, {"text": str(text_file), "quick": True}).effective()
    out = tmp_path / "run"
    out.mkdir()
    ResultStore(out, cfg).save()
    return out


def _resume(out, text_file):
    return runner.invoke(app, ["run", "--text", str(text_file), "--quick", "--resume", "--out", str(out)],
                         terminal_width=200)


def test_resume_after_the_text_changed_is_refused_naming_it(tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("Call me Ishmael. Some years ago, never mind how long precisely. " * 200)
    out = _made_with(tmp_path, text)
    text.write_text("It was the best of times, it was the worst of times, it was the age. " * 200)
    result = _resume(out, text)
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())
    assert "the text changed" in message and "--restart" in message


@pytest.mark.parametrize("edit", [
    lambda d: d.update(steps={"accuracy": [1, 2]}),
    lambda d: d.update(steps={"accuracy": 5}),
    lambda d: d.update(seconds=[1]),
    lambda d: d.update(seconds={"accuracy": "ten"}),
    lambda d: d.update(inputs=7),
])
def test_a_results_file_of_the_wrong_shape_is_refused(tmp_path, edit):
    text = tmp_path / "t.txt"
    text.write_text("Call me Ishmael. Some years ago, never mind how long precisely. " * 200)
    out = _made_with(tmp_path, text)
    data = json.loads((out / "results.json").read_text())
    edit(data)
    (out / "results.json").write_text(json.dumps(data))
    result = _resume(out, text)
    assert result.exit_code == 2, result.output
    assert "--restart" in " ".join(result.output.split())
