"""Measure dense attention on a CUDA GPU the way the papers' baselines ran it, for :mod:`sparseattn.hw.gpu_fit`.

Two suites (``--suite``, or ``all`` for both into one file):

* ``papers`` (default) -- eager PyTorch attention (Hugging Face's ``eager_attention_forward``: matmul, scale, mask,
  fp32 softmax, cast, matmul, transpose; SOFA's A100 baseline) in fp16 and fp32, and
  ``torch.nn.functional.scaled_dot_product_attention`` (FlashAttention-class, fp16) on the papers' workload shapes --
  BERT-Base/Large at 512, GPT-2 at 1024, Bloom-1.7B at 2048, Llama-7B at 4096 tokens; batch 1 and 8; a prefill and
  one decode step -- one layer each;
* ``roofline`` -- SDPA at the shapes the H100 roofline was fitted to (bf16, batch 1, 32 heads, head dim 128,
  non-causal, 4k-128k tokens; :data:`sparseattn.hw.gpu.H100_SDPA_MS`).

Time: median of CUDA-event timings after warm-up. Power: ``nvidia-smi --query-gpu=power.draw`` sampled every 50 ms
while each run repeats for at least a second, and idle (nothing running, 3 s) once. The output is a
:class:`~sparseattn.hw.gpu_fit.Measurements` JSON, written after every run (``--out``); then the fits of the GPU
model's terms (eager launch and efficiencies, the roofline's efficiency, the busy board power) are printed and written
beside it as ``gpu_fit.json``, with the measured GPU's model (``<name>.yaml``: its assumed configuration with the
fitted terms and their provenance; :func:`sparseattn.hw.gpu_fit.measured_arch`). ``--fit FILE`` fits an existing
file. Needs CUDA; refuses otherwise, except ``--dry-run``: the same pipeline on the CPU at tiny shapes without power
readings (it checks the script, it measures nothing a GPU model may use).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import threading
import time
from pathlib import Path

import torch

from sparseattn.core.files import write_atomic
from sparseattn.kernels._runtime import cuda_ms

RESULTS = Path(__file__).parent / "results" / "gpu"
DEVICE = "cuda"  # "cpu" in a dry run
PAPER_SHAPES = {  # model: (heads, kv_heads, head_dim, tokens, causal)
    "bert-base": (12, 12, 64, 512, False), "bert-large": (16, 16, 64, 512, False), "gpt2": (12, 12, 64, 1024, True),
    "bloom-1.7b": (16, 16, 128, 2048, True), "llama2-7b": (32, 32, 128, 4096, True),
}
ROOFLINE_TOKENS = (4096, 16384, 65536, 131072)


def eager_attention(q, k, v, causal: bool):
    """Hugging Face's eager attention, kernel for kernel."""
    scores = torch.matmul(q, k.transpose(-1, -2)) * (q.shape[-1] ** -0.5)
    if causal:
        n, m = q.shape[-2], k.shape[-2]
        mask = torch.full((n, m), float("-inf"), device=q.device, dtype=q.dtype).triu(m - n + 1)
        scores = scores + mask
    probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
    return torch.matmul(probs, v).transpose(1, 2).contiguous()


def sdpa(q, k, v, causal: bool):
    return torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal and q.shape[-2] > 1)


class PowerSampler:
    """nvidia-smi power.draw sampled on a thread while a block runs."""

    def __init__(self, period_s: float = 0.05):
        self.period, self.samples, self._stop = period_s, [], threading.Event()

    def _loop(self) -> None:
        while not self._stop.is_set():
            out = subprocess.run(["nvidia-smi", "--query-gpu=power.draw", "--format=csv,noheader,nounits", "-i", "0"],
                                 capture_output=True, text=True, check=False).stdout.strip()
            try:
                self.samples.append(float(out.splitlines()[0]))
            except (ValueError, IndexError):
                pass
            time.sleep(self.period)

    def __enter__(self):
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.samples) if self.samples else None


def measure(impl: str, model: str, phase: str, batch: int, heads: int, kv: int, d: int, n: int, causal: bool,
            dtype: torch.dtype) -> dict:
    q_len = 1 if phase == "decode" else n
    q = torch.randn(batch, heads, q_len, d, device=DEVICE, dtype=dtype)
    k, v = (torch.randn(batch, heads, n, d, device=DEVICE, dtype=dtype) for _ in range(2))
    fn = (lambda: eager_attention(q, k, v, causal)) if impl == "eager" else (lambda: sdpa(q, k, v, causal))
    row = {"impl": impl, "model": model, "phase": phase, "batch": batch, "heads": heads, "kv_heads": kv,
           "q_len": q_len, "k_len": n, "head_dim": d, "causal": causal, "dtype": DTYPE_NAMES[dtype]}
    if DEVICE != "cuda":
        return {**row, "ms": _wall_ms(fn), "power_w": None}
    ms = cuda_ms(fn, repeats=20, warmup=3)
    reps = max(1, int(1000 / max(ms, 1e-3)))
    with PowerSampler() as power:
        for _ in range(reps):
            fn()
        torch.cuda.synchronize()
    return {**row, "ms": ms, "power_w": power.mean}


DTYPE_NAMES = {torch.float16: "fp16", torch.bfloat16: "bf16", torch.float32: "fp32"}


def _wall_ms(fn, repeats: int = 3) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def idle_power() -> float | None:
    if DEVICE != "cuda":
        return None
    torch.cuda.synchronize()
    with PowerSampler() as power:
        time.sleep(3)
    return power.mean


def runs(suite: str, shrink: int = 1):
    """The runs of a suite; ``shrink`` divides tokens and heads (the dry run's tiny shapes)."""
    if suite in ("roofline", "all"):
        for n in ROOFLINE_TOKENS[: 1 if shrink > 1 else None]:
            yield ("sdpa", f"sdpa-{n}", "prefill", 1, 32 // shrink, 32 // shrink, 128, n // shrink, False,
                   torch.bfloat16)
    if suite == "roofline":
        return
    for model, (h, kv, d, n, causal) in PAPER_SHAPES.items():
        for batch in (1, 8) if shrink == 1 else (1,):
            for phase in ("prefill", "decode") if causal else ("prefill",):
                for impl, dtype in (("eager", torch.float16), ("eager", torch.float32), ("sdpa", torch.float16)):
                    yield (impl, model, phase, batch, max(1, h // shrink), max(1, kv // shrink), d, n // shrink,
                           causal, dtype)


BASES = {"A100": "a100", "H100": "h100", "H200": "h200"}  # the assumed model each measured GPU starts from


def base_arch(device: str) -> str:
    """The bundled GPU model a measured device refines (by name); an unknown device is an error."""
    for key, name in BASES.items():
        if key in device.upper():
            return name
    raise SystemExit(f"no bundled GPU model for {device!r} (known: {', '.join(BASES)}); add its datasheet "
                     "configuration to sparseattn/hw/configs/ first")


def fit(path: Path, base: str | None = None) -> dict:
    """Fit the GPU model's terms to the measurement file ``path``; write ``gpu_fit.json`` and the measured GPU's
    model beside it; returns the fit report."""
    from sparseattn.hw import load_arch
    from sparseattn.hw.gpu_fit import fit_all, load_measurements, measured_arch, write_arch

    m = load_measurements(path)
    gpu = load_arch(base or base_arch(m.device))
    fits, report = fit_all(gpu, m)
    print(json.dumps(report, indent=1))
    write_atomic(path.parent / "gpu_fit.json", json.dumps(report, indent=1))
    if fits:
        arch = measured_arch(gpu, m, fits, str(path.name))
        write_arch(arch, path.parent / f"{arch.name}.yaml")
    return report


def main(argv: list[str] | None = None) -> None:
    global DEVICE
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--suite", choices=("papers", "roofline", "all"), default="papers")
    ap.add_argument("--out", type=Path, default=None, help="measurement file (default results/gpu/<device>.json)")
    ap.add_argument("--fit", type=Path, default=None, help="fit the GPU model to a measurement file and exit")
    ap.add_argument("--base", default=None, help="the bundled GPU model to refine (default: by the device name)")
    ap.add_argument("--dry-run", action="store_true", help="CPU, tiny shapes, no power: checks the pipeline")
    args = ap.parse_args(argv)
    if args.fit:
        fit(args.fit, args.base)
        return
    if args.dry_run:
        DEVICE = "cpu"
    elif not torch.cuda.is_available():
        raise SystemExit("measure_gpu_attention.py needs a CUDA GPU (none found); the GPU model's terms stay "
                         "stated assumptions until it runs on one (--dry-run checks the pipeline on a CPU)")
    device = torch.cuda.get_device_name() if DEVICE == "cuda" else "cpu (dry run)"
    out = args.out or RESULTS / f"gpu_attention_{device.replace(' ', '_')}_{args.suite}.json"
    data = {"device": device, "idle_power_w": idle_power(), "runs": [],
            "notes": [f"torch {torch.__version__}, suite {args.suite}" + (", dry run on CPU" if args.dry_run else "")]}
    out.parent.mkdir(parents=True, exist_ok=True)
    for spec in runs(args.suite, 8 if args.dry_run else 1):
        data["runs"].append(measure(*spec))
        print(data["runs"][-1], flush=True)
        write_atomic(out, json.dumps(data, indent=1))  # after every run: an interrupted sweep keeps what it measured
    fit(out, args.base or ("h100" if args.dry_run else None))


if __name__ == "__main__":
    main()
