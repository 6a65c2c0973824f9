"""``sparseattn finetune`` end to end on the tiny model, and its errors."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from sparseattn.cli import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def _grad_mode():
    with torch.enable_grad():
        yield


def test_finetune_command_reports_the_recovery_against_dense(tiny_llama, tmp_path):
    out = tmp_path / "result.json"
    args = ["finetune", "--model", tiny_llama, "--method", "topk", "--ratio", "0.3", "--min-keys", "4", "--steps",
            "2", "--tokens", "48", "--out", str(tmp_path / "run"), "--json", str(out)]
    result = runner.invoke(app, args, terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "vs dense" in result.output and "ppl after" in result.output
    data = json.loads(out.read_text())
    assert data["dense"]["record"]["method"] == "dense" and data["sparse"]["record"]["params"]["ratio"] == 0.3
    assert data["gap_before"] == pytest.approx(data["sparse"]["loss_before"] - data["dense"]["loss_before"])
    assert (tmp_path / "run" / "final" / "finetune.json").is_file()
    assert (tmp_path / "run-dense" / "final" / "finetune.json").is_file()


@pytest.mark.parametrize(("args", "message"), [
    (["--method", "nonesuch"], "unknown method 'nonesuch'"),
    (["--steps", "0"], "steps"),
    (["--train-text", "/no/such.txt"], "train_text"),
    (["--k", "3"], "invalid parameters for method 'sofa'"),
    (["--device", "tpu"], "device"),
])
def test_finetune_command_bad_input_exits_2_with_a_message(args, message):
    base = {"--steps": "2"}
    for i in range(0, len(args), 2):
        base[args[i]] = args[i + 1]
    flat = [x for kv in base.items() for x in kv]
    result = runner.invoke(app, ["finetune", *flat, "--no-compare"], terminal_width=200)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


@pytest.mark.slow  # two processes that each import torch and transformers
def test_two_processes_train_one_run_through_torchrun(tiny_llama, tmp_path):
    """The same command under ``torchrun --nproc_per_node 2``: Accelerate joins the launch (gloo on CPU), the run
    records two processes, and one report is printed."""
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    torchrun = Path(sys.executable).with_name("torchrun")
    cli = shutil.which("sparseattn", path=str(Path(sys.executable).parent))
    if not torchrun.exists() or cli is None:
        pytest.skip("torchrun or the sparseattn script is not installed beside this Python")
    out = tmp_path / "run"
    cmd = [str(torchrun), "--nproc_per_node", "2", "--master_port", "29531", cli, "finetune", "--model", tiny_llama,
           "--method", "topk", "--ratio", "0.5", "--min-keys", "4", "--steps", "2", "--tokens", "48",
           "--no-compare", "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((out / "run.json").read_text())["inputs"]["processes"] == "2"
    assert json.loads((out / "latest.json").read_text())["step"] == 2
    assert done.stdout.count("ppl before") == 1
