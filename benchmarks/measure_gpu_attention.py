"""Measure dense attention on a CUDA GPU the way the papers' baselines ran it, for :mod:`sparseattn.hw.gpu_fit`.

Two suites (``--suite``):

* ``papers`` (default) -- eager PyTorch attention (Hugging Face's ``eager_attention_forward``: matmul, scale, mask,
  fp32 softmax, cast, matmul, transpose; SOFA's A100 baseline) and ``torch.nn.functional.scaled_dot_product_attention``
  (FlashAttention-class) on the papers' workload shapes -- BERT-Base/Large at 512, GPT-2 at 1024, Bloom-1.7B at 2048,
  Llama-7B at 4096 tokens; batch 1 and 8; a prefill and one decode step -- one layer each, fp16;
* ``roofline`` -- SDPA at the shapes the H100 roofline was fitted to (bf16, batch 1, 32 heads, head dim 128,
  non-causal, 4k-128k tokens; :data:`sparseattn.hw.gpu.H100_SDPA_MS`).

Time: median of CUDA-event timings after warm-up. Power: ``nvidia-smi --query-gpu=power.draw`` sampled every 50 ms
while each run repeats for at least a second, and idle (nothing running, 3 s) once. The output is a
:class:`~sparseattn.hw.gpu_fit.Measurements` JSON (``benchmarks/results/gpu_attention_<device>.json``); then
``python benchmarks/measure_gpu_attention.py --fit FILE`` fits the eager model's launch and efficiency terms, the
roofline's efficiency and the busy board power to it and prints each fit's error. Needs CUDA; refuses otherwise.
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

from sparseattn.kernels._runtime import cuda_ms

RESULTS = Path(__file__).parent / "results"
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
    q = torch.randn(batch, heads, q_len, d, device="cuda", dtype=dtype)
    k, v = (torch.randn(batch, heads, n, d, device="cuda", dtype=dtype) for _ in range(2))
    fn = (lambda: eager_attention(q, k, v, causal)) if impl == "eager" else (lambda: sdpa(q, k, v, causal))
    ms = cuda_ms(fn, repeats=20, warmup=3)
    reps = max(1, int(1000 / max(ms, 1e-3)))
    with PowerSampler() as power:
        for _ in range(reps):
            fn()
        torch.cuda.synchronize()
    return {"impl": impl, "model": model, "phase": phase, "batch": batch, "heads": heads, "kv_heads": kv,
            "q_len": q_len, "k_len": n, "head_dim": d, "causal": causal,
            "dtype": {torch.float16: "fp16", torch.bfloat16: "bf16"}[dtype], "ms": ms, "power_w": power.mean}


def idle_power() -> float | None:
    torch.cuda.synchronize()
    with PowerSampler() as power:
        time.sleep(3)
    return power.mean


def runs(suite: str):
    if suite == "roofline":
        for n in ROOFLINE_TOKENS:
            yield ("sdpa", f"sdpa-{n}", "prefill", 1, 32, 32, 128, n, False, torch.bfloat16)
        return
    for model, (h, kv, d, n, causal) in PAPER_SHAPES.items():
        for batch in (1, 8):
            for phase in ("prefill", "decode") if causal else ("prefill",):
                for impl in ("eager", "sdpa"):
                    yield (impl, model, phase, batch, h, kv, d, n, causal, torch.float16)


def fit(path: Path) -> None:
    from sparseattn.hw import load_arch
    from sparseattn.hw.gpu_fit import fit_busy_power, fit_eager, fit_flash_efficiency, load_measurements

    m = load_measurements(path)
    gpu = load_arch("h100" if "H100" in m.device.upper() else "a100")
    report = {}
    for name, fn in (("eager", lambda: fit_eager(gpu, m.runs)), ("flash", lambda: fit_flash_efficiency(gpu, m.runs)),
                     ("power", lambda: fit_busy_power(gpu, m.runs, m.idle_power_w or gpu.idle_power_w))):
        try:
            f = fn()
            report[name] = {"values": f.values, "rms_error": f.rms_error, "max_error": f.max_error, "runs": f.runs}
        except ValueError as err:
            report[name] = {"skipped": str(err)}
    print(json.dumps(report, indent=1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--suite", choices=("papers", "roofline"), default="papers")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--fit", type=Path, default=None, help="fit the GPU model to a measurement file and exit")
    args = ap.parse_args()
    if args.fit:
        fit(args.fit)
        return
    if not torch.cuda.is_available():
        raise SystemExit("measure_gpu_attention.py needs a CUDA GPU (none found); the GPU model's terms stay "
                         "stated assumptions until it runs on one")
    device = torch.cuda.get_device_name()
    out = args.out or RESULTS / f"gpu_attention_{device.replace(' ', '_')}_{args.suite}.json"
    data = {"device": device, "idle_power_w": idle_power(), "runs": [],
            "notes": [f"torch {torch.__version__}, suite {args.suite}"]}
    for spec in runs(args.suite):
        data["runs"].append(measure(*spec))
        print(data["runs"][-1], flush=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(data, indent=1))  # after every run: an interrupted sweep keeps what it measured
    fit(out)


if __name__ == "__main__":
    main()
