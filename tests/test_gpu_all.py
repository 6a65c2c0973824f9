"""``make gpu`` before a GPU is ever lent: the whole measurement pipeline (benchmarks/gpu_all.py) runs on the CPU in
Triton's interpreter at tiny sizes, every step succeeds and writes checked results, and a dry run's results can
never be adopted as a GPU's."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "gpu_all.py"


def _run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=600, check=False)


def _finite_numbers(value) -> list[float]:
    if isinstance(value, dict):
        return [x for v in value.values() for x in _finite_numbers(v)]
    if isinstance(value, list):
        return [x for v in value for x in _finite_numbers(v)]
    return [value] if isinstance(value, float) else []


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    out, carry = tmp_path_factory.mktemp("gpu") / "results", tmp_path_factory.mktemp("out")
    proc = _run("run", "--dry-run", "--out", str(out), env={"OUT": str(carry)})
    return proc, out, carry


@pytest.mark.slow  # the whole GPU command in dry-run mode on CPU (a module fixture: minutes on 2 cores)
def test_the_dry_run_runs_every_step(dry_run):
    proc, out, _ = dry_run
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads((out / "gpu_all.json").read_text())
    assert [s["step"] for s in summary["steps"]] == ["kernels", "bench", "measure", "ppl"]
    assert all(s["status"] == "ok" for s in summary["steps"]), summary["steps"]
    assert summary["machine"]["dry_run"] == "true" and summary["machine"]["torch"]
    assert "DRY RUN" in (out / "gpu_all.md").read_text()


@pytest.mark.slow  # the whole GPU command in dry-run mode on CPU (a module fixture: minutes on 2 cores)
def test_the_dry_run_writes_every_result_checked(dry_run):
    _, out, _ = dry_run
    bench = json.loads((out / "bench_gpu.json").read_text())
    assert bench["prefill"] and bench["decode"] and bench["break_even"] and bench["meta"]["dry_run"]
    assert {r["density"] for r in bench["prefill"]} == {1.0, 0.25}
    for row in bench["prefill"] + bench["decode"]:
        for key in ("ours_ms", "sdpa_ms"):
            assert math.isfinite(row[key]) and row[key] > 0
    assert all("flex_ms" in r for r in bench["prefill"])  # FlexAttention on the same blocks ran too
    ppl = json.loads((out / "ppl.json").read_text())["ppl"]
    assert len(ppl) == 1 and ppl[0]["dense_ppl"] > 1 and ppl[0]["star_block_ppl"] > 1 and ppl[0]["star_gpu_ppl"] > 1
    measured = json.loads((out / "gpu_attention.json").read_text())
    assert {(r["impl"], r["dtype"]) for r in measured["runs"]} >= {("eager", "fp16"), ("eager", "fp32"),
                                                                   ("sdpa", "fp16"), ("sdpa", "bf16")}
    fit = json.loads((out / "gpu_fit.json").read_text())
    assert set(fit) == {"eager", "flash", "power"} and "skipped" in fit["power"]  # no power on a CPU: said so
    for name in ("bench_gpu.json", "ppl.json", "gpu_attention.json", "gpu_fit.json"):
        numbers = _finite_numbers(json.loads((out / name).read_text()))
        assert numbers and all(math.isfinite(x) for x in numbers), name
    assert (out / "kernels.xml").is_file() and 'failures="0"' in (out / "kernels.xml").read_text()


@pytest.mark.slow  # the whole GPU command in dry-run mode on CPU (a module fixture: minutes on 2 cores)
def test_the_results_travel_as_one_archive_and_a_dry_run_is_never_adopted(dry_run):
    _, _, carry = dry_run
    assert sorted(p.name for p in carry.iterdir()) == ["gpu_all.json", "gpu_all.md", "gpu_results.tar.gz"]
    proc = _run("adopt", str(carry / "gpu_results.tar.gz"))
    assert proc.returncode != 0 and "dry run" in proc.stderr


def test_bad_requests_are_refused_before_any_work(tmp_path):
    proc = _run("run", "--dry-run", "--steps", "kernels,warp", "--out", str(tmp_path))
    assert proc.returncode == 2 and "unknown steps ['warp']" in proc.stderr
    assert not any(tmp_path.iterdir())
    if not _cuda():
        proc = _run("run", "--out", str(tmp_path / "gpu"))
        assert proc.returncode == 2 and "no CUDA GPU" in proc.stderr and "--dry-run" in proc.stderr


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()
