"""GPU benchmark of the ``star_gpu`` Triton kernels against PyTorch SDPA and compiled FlexAttention (issue 17).

For every (batch, heads/KV heads, causal, N, density): the time of ours in total and per stage (predict =
pooling/quantisation prologue + scoring kernel, select, attend), PyTorch SDPA (flash/cuDNN backends, dense), and
compiled FlexAttention given the *same* kept blocks (``BlockMask.from_kv_blocks`` built from our indices; its
build time is reported apart). Density is our ``ratio`` (1.0 = every block; the forced sink/diagonal/local blocks
count towards it, the achieved block density is reported). Derived: speed-ups, effective TFLOP/s (dense-equivalent
FLOPs / time), prediction + selection as a share of dense SDPA, the break-even length where ours beats SDPA at each
density, and the issue's targets. A decode sweep (one query per head against a KV cache) compares with SDPA decode.

Timing: CUDA events, median of ``--repeats`` after ``--warmup`` calls, inputs ``torch.randn`` in bf16 (random data:
the *speed* does not depend on the values at a fixed kept-block count). Everything that does not fit in memory is
recorded as ``"oom"``. ``--ppl`` also measures SmolLM2 perplexity on the bundled text with ``star_gpu`` on CUDA.

Writes ``bench_gpu.json`` and ``bench_gpu.md`` into ``--out`` (default ``benchmarks/results``), the JSON after every
row, so a run stopped at its time budget keeps what it measured. Needs a CUDA GPU; exits with a message (and
status 2) otherwise. ``--dry-run`` runs the same pipeline on the CPU in Triton's interpreter at tiny sizes, timed by
the wall clock (it checks the script, it measures nothing). The full default sweep takes on the order of an hour on
an H100; ``--quick`` a few minutes; ``benchmarks/gpu_all.py`` runs the sized sweep of ``make gpu``.

Usage: ``python benchmarks/bench_gpu.py [--quick|--dry-run] [--ppl] [--lengths 4096 16384 ...] [--densities 0.1 ...]``.
"""

from __future__ import annotations

import os
import sys

if "--dry-run" in sys.argv:  # before any kernel module is imported: Triton reads it when a kernel is defined
    os.environ["TRITON_INTERPRET"] = "1"

import argparse
import json
import math
import platform
import statistics
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from sparseattn.core.files import write_atomic
from sparseattn.kernels._runtime import cuda_ms

RESULTS = Path(__file__).parent / "results"
LENGTHS = [4096, 8192, 16384, 32768, 65536, 131072]
DENSITIES = [1.0, 0.5, 0.25, 0.1, 0.05]
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
DEVICE = "cuda"  # "cpu" in a dry run


def wall_ms(fn: Callable[[], object], repeats: int = 10, warmup: int = 1) -> float:
    """Median wall-clock milliseconds of ``fn`` (the dry run's timer: no CUDA events on a CPU)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def timed(fn: Callable[[], object], repeats: int, warmup: int) -> float:
    """CUDA-event timing on the GPU, the wall clock in a dry run."""
    return (cuda_ms if DEVICE == "cuda" else wall_ms)(fn, repeats, warmup)


def guarded(fn: Callable[[], float]) -> float | str:
    """``fn()``, or ``"oom"`` when the GPU runs out of memory."""
    try:
        return fn()
    except torch.cuda.OutOfMemoryError:
        torch.cuda.empty_cache()
        return "oom"


def sdpa_fn(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool) -> Callable[[], torch.Tensor]:
    """Dense SDPA on the flash / cuDNN backends (K/V repeated for GQA when the backend refuses ``enable_gqa``)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    square = causal and q.shape[2] == k.shape[2]
    mask = None
    if causal and not square:  # decode: queries are the last positions; one query sees every key
        mask = None if q.shape[2] == 1 else torch.ones(q.shape[2], k.shape[2], dtype=torch.bool,
                                                       device=q.device).tril(k.shape[2] - q.shape[2])
    g = q.shape[1] // k.shape[1]
    backends = [SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION]

    def run(kk: torch.Tensor, vv: torch.Tensor, gqa: bool) -> torch.Tensor:
        with sdpa_kernel(backends):
            return F.scaled_dot_product_attention(q, kk, vv, attn_mask=mask, is_causal=square, enable_gqa=gqa)

    try:
        run(k, v, g > 1)
        return lambda: run(k, v, g > 1)
    except RuntimeError:
        kk, vv = k.repeat_interleave(g, dim=1), v.repeat_interleave(g, dim=1)
        return lambda: run(kk, vv, False)


def dense_flops(b: int, h: int, nq: int, nk: int, d: int, causal: bool) -> float:
    """FLOPs of dense attention (QK and PV, 2 per MAC) over the valid pairs."""
    pairs = nq * nk if not causal else nq * (nk - nq) + nq * (nq + 1) / 2
    return 4.0 * b * h * pairs * d


def one_config(b: int, h: int, hkv: int, n: int, density: float, causal: bool, args: argparse.Namespace,
               dtype: str = "bf16") -> dict:
    """Time ours (total and per stage), SDPA and compiled FlexAttention at one point."""
    from sparseattn.kernels import star_forward, star_params
    from sparseattn.kernels.flex import compiled_flex_attention, to_block_mask
    from sparseattn.kernels.star import attend_stage, predict_stage, select_stage

    d, scale = args.dim, args.dim**-0.5
    q, k, v = inputs(b, h, hkv, n, n, d, dtype)
    p = star_params(block_q=args.block_q, block_k=args.block_k, ratio=density, **predictor(args))
    row: dict[str, Any] = {"B": b, "H": h, "Hkv": hkv, "N": n, "D": d, "causal": causal, "density": density,
                           "dtype": dtype}
    scores, plan = predict_stage(q, k, causal, scale, p)
    num, idx = select_stage(scores, plan, p)
    kept = float(num.sum()) / (num.shape[0] * num.shape[1] * float(plan.n_valid.sum()))
    row["block_density"] = round(kept, 4)
    reps, warm = args.repeats, args.warmup
    row["ours_ms"] = guarded(lambda: timed(lambda: star_forward(q, k, v, causal, scale, params=p), reps, warm))
    row["predict_ms"] = guarded(lambda: timed(lambda: predict_stage(q, k, causal, scale, p), reps, warm))
    row["select_ms"] = guarded(lambda: timed(lambda: select_stage(scores, plan, p), reps, warm))
    row["attend_ms"] = guarded(lambda: timed(lambda: attend_stage(q, k, v, num, idx, causal, scale, p), reps, warm))
    row["sdpa_ms"] = guarded(lambda: timed(sdpa_fn(q, k, v, causal), reps, warm))
    if not args.no_flex:
        res = star_forward(q, k, v, causal, scale, params=p)
        row["flex_mask_ms"] = guarded(lambda: timed(lambda: to_block_mask(res.selection, causal, h), 3, 1))
        mask = to_block_mask(res.selection, causal, h)
        flex = compiled_flex_attention()
        row["flex_ms"] = guarded(lambda: timed(
            lambda: flex(q, k, v, block_mask=mask, scale=scale, enable_gqa=h != hkv), reps, warm))
    return derive(row)


def inputs(b: int, h: int, hkv: int, nq: int, nk: int, d: int, dtype: str) -> tuple[torch.Tensor, ...]:
    """Random ``q [b, h, nq, d]``, ``k, v [b, hkv, nk, d]`` on the benchmark's device (the speed does not depend
    on the values at a fixed kept-block count)."""
    shapes = ((b, h, nq, d), (b, hkv, nk, d), (b, hkv, nk, d))
    return tuple(torch.randn(*s, device=DEVICE, dtype=DTYPES[dtype]) for s in shapes)


def predictor(args: argparse.Namespace) -> dict[str, str]:
    return {} if args.predictor is None else {"predictor": args.predictor}


def derive(row: dict) -> dict:
    """Speed-ups, effective TFLOP/s and the prediction share of a measured row."""
    flops = dense_flops(row["B"], row["H"], row["N"], row["N"], row["D"], row["causal"])
    ours, sdpa, flex = row.get("ours_ms"), row.get("sdpa_ms"), row.get("flex_ms")
    if isinstance(ours, float):
        row["ours_eff_tflops"] = round(flops / ours / 1e9, 1)
        if isinstance(sdpa, float):
            row["speedup_vs_sdpa"] = round(sdpa / ours, 3)
            row["sdpa_tflops"] = round(flops / sdpa / 1e9, 1)
            if isinstance(row.get("predict_ms"), float) and isinstance(row.get("select_ms"), float):
                row["predict_select_share_of_sdpa"] = round((row["predict_ms"] + row["select_ms"]) / sdpa, 4)
        if isinstance(flex, float):
            row["speedup_vs_flex"] = round(flex / ours, 3)
            row["flex_eff_tflops"] = round(flops / flex / 1e9, 1)
    return row


def decode_config(b: int, h: int, hkv: int, n: int, density: float, args: argparse.Namespace,
                  dtype: str = "bf16") -> dict:
    """One query per head against an ``n``-token cache: ours vs SDPA decode."""
    from sparseattn.kernels import star_forward, star_params

    d = args.dim
    q, k, v = inputs(b, h, hkv, 1, n, d, dtype)
    p = star_params(block_q=16, block_k=args.block_k, ratio=density, **predictor(args))
    row: dict[str, Any] = {"B": b, "H": h, "Hkv": hkv, "cache": n, "D": d, "density": density, "dtype": dtype}
    row["ours_ms"] = guarded(lambda: timed(lambda: star_forward(q, k, v, True, params=p), args.repeats,
                                           args.warmup))
    row["sdpa_ms"] = guarded(lambda: timed(sdpa_fn(q, k, v, True), args.repeats, args.warmup))
    if isinstance(row["ours_ms"], float) and isinstance(row["sdpa_ms"], float):
        row["speedup_vs_sdpa"] = round(row["sdpa_ms"] / row["ours_ms"], 3)
        kv_bytes = 2 * b * hkv * n * d * q.element_size()
        row["sdpa_GBps"] = round(kv_bytes / row["sdpa_ms"] / 1e6, 1)
    return row


def break_even(rows: list[dict]) -> list[dict]:
    """Per (B, H, Hkv, causal, dtype, density): the smallest measured N where ours beats SDPA (None: never)."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["B"], r["H"], r["Hkv"], r["causal"], r["dtype"], r["density"]), []).append(r)
    out = []
    for (b, h, hkv, causal, dtype, dens), rs in sorted(groups.items(), key=str):
        wins = [r["N"] for r in sorted(rs, key=lambda r: r["N"]) if r.get("speedup_vs_sdpa", 0) > 1]
        out.append({"B": b, "H": h, "Hkv": hkv, "causal": causal, "dtype": dtype, "density": dens,
                    "break_even_N": wins[0] if wins else None})
    return out


def targets(rows: list[dict], even: list[dict], ppl: list[dict] | None = None) -> list[tuple[str, str]]:
    """The stated targets, each with the measured worst case over the sweep."""

    def worst(values: list[float], fn=min) -> str:
        if not values:
            return "not measured"
        return "never" if math.isinf(fn(values)) else f"{fn(values):.4g}"

    at_01 = [r["speedup_vs_sdpa"] for r in rows if r["density"] == 0.1 and r["N"] >= 16384 and "speedup_vs_sdpa" in r]
    flex = [r["speedup_vs_flex"] for r in rows if r["density"] < 1 and "speedup_vs_flex" in r]
    dense = [r["speedup_vs_sdpa"] for r in rows if r["density"] == 1.0 and "speedup_vs_sdpa" in r]
    share = [r["predict_select_share_of_sdpa"] for r in rows if r["N"] == 65536 and "predict_select_share_of_sdpa"
             in r]
    be = [e["break_even_N"] or math.inf for e in even if e["density"] == 0.25]
    gap = [abs(r["star_gpu_vs_star_block"]) for r in ppl or [] if r.get("star_gpu_vs_star_block") is not None]
    return [
        ("density 0.1, N >= 16k: total >= 7x SDPA (min speed-up)", worst(at_01)),
        ("same blocks: >= 1.1x FlexAttention (min speed-up, density < 1)", worst(flex)),
        ("dense path >= 0.9x SDPA (min)", worst(dense)),
        ("predict + select < 8% of dense SDPA at 64k (max share)", worst(share, max)),
        ("break-even <= 4096 at density 0.25 (max N)", worst(be, max)),
        ("perplexity: star_gpu within 0.1% of star_block (max |relative difference|)", worst(gap, max)),
    ]


def ppl_rows(args: argparse.Namespace) -> list[dict]:
    """SmolLM2 perplexity on the bundled text at ``--ppl-tokens``: dense (SDPA), ``star_block`` (the PyTorch
    reference) and ``star_gpu`` (the kernels) on the benchmark's device, in ``--ppl-layers`` (default every layer;
    the dry run patches two, so the interpreter finishes in seconds)."""
    from sparseattn.eval.corpora import load_text
    from sparseattn.eval.perplexity import perplexity_of_ids
    from sparseattn.models import load_model

    lm = load_model("smollm2-135m", device=DEVICE)
    rows = []
    for n in args.ppl_tokens:
        ids = lm.encode(load_text(args.text), n).to(DEVICE)
        base = perplexity_of_ids(lm, ids, None, text=args.text)
        ref = perplexity_of_ids(lm, ids, "star_block", args.ppl_layers, text=args.text, **predictor(args))
        ours = perplexity_of_ids(lm, ids, "star_gpu", args.ppl_layers, text=args.text, **predictor(args))
        rows.append({"tokens": int(ids.shape[1]), "dense_ppl": base.ppl, "star_block_ppl": ref.ppl,
                     "star_gpu_ppl": ours.ppl, "ppl_increase": ours.ppl / base.ppl - 1,
                     "star_gpu_vs_star_block": ours.ppl / ref.ppl - 1, "density": ours.density,
                     "star_block_density": ref.density})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def write(results: dict, out: Path, stem: str = "bench_gpu") -> None:
    """``<stem>.json`` and ``<stem>.md`` in ``out``, atomically (called after every row)."""
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / f"{stem}.json", json.dumps(results, indent=1))
    write_atomic(out / f"{stem}.md", markdown(results))


def markdown(results: dict) -> str:
    meta = results["meta"]
    lines = [f"# star_gpu vs SDPA vs FlexAttention ({meta['device']}, torch {meta['torch']}, triton {meta['triton']}, "
             f"predictor {meta['predictor']}, {meta['statistic']})", "",
             "| B | H/Hkv | causal | dtype | N | density (blocks) | ours ms | predict | select | attend | SDPA ms "
             "| flex ms | x SDPA | x flex | eff TFLOP/s |", "|" + "---|" * 15]
    for r in results["prefill"]:
        cells = [r["B"], f"{r['H']}/{r['Hkv']}", r["causal"], r["dtype"], r["N"],
                 f"{r['density']} ({r['block_density']})"]
        cells += [_f(r.get(c)) for c in ("ours_ms", "predict_ms", "select_ms", "attend_ms", "sdpa_ms", "flex_ms",
                                          "speedup_vs_sdpa", "speedup_vs_flex", "ours_eff_tflops")]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    lines += ["", "## Break-even length (ours faster than SDPA)", "", "| B | H/Hkv | causal | dtype | density | N |",
              "|---|---|---|---|---|---|"]
    lines += [f"| {e['B']} | {e['H']}/{e['Hkv']} | {e['causal']} | {e['dtype']} | {e['density']} | "
              f"{e['break_even_N']} |" for e in results["break_even"]]
    lines += ["", "## Decode", "", "| B | H/Hkv | dtype | cache | density | ours ms | SDPA ms | x SDPA |",
              "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['B']} | {r['H']}/{r['Hkv']} | {r['dtype']} | {r['cache']} | {r['density']} | "
              f"{_f(r.get('ours_ms'))} | {_f(r.get('sdpa_ms'))} | {_f(r.get('speedup_vs_sdpa'))} |"
              for r in results["decode"]]
    lines += ["", "## Targets", "", "| target | measured |", "|---|---|"]
    lines += [f"| {t} | {v} |" for t, v in results["targets"]]
    if results.get("ppl"):
        lines += ["", "## SmolLM2 perplexity", "", "| tokens | dense | star_block | star_gpu | star_gpu vs star_block "
                  "| vs dense | density |", "|---|---|---|---|---|---|---|"]
        lines += [f"| {r['tokens']} | {r['dense_ppl']:.3f} | {r['star_block_ppl']:.3f} | {r['star_gpu_ppl']:.3f} | "
                  f"{r['star_gpu_vs_star_block']:+.3%} | {r['ppl_increase']:+.2%} | {r['density']:.3f} |"
                  for r in results["ppl"]]
    return "\n".join(lines) + "\n"


def _f(x: object) -> str:
    return f"{x:.3f}" if isinstance(x, float) else str(x if x is not None else "-")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--kv-heads", type=int, nargs="+", default=[32, 8])
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--lengths", type=int, nargs="+", default=LENGTHS)
    ap.add_argument("--densities", type=float, nargs="+", default=DENSITIES)
    ap.add_argument("--dtypes", nargs="+", choices=sorted(DTYPES), default=["bf16"])
    ap.add_argument("--causal", choices=["both", "causal", "full"], default="both")
    ap.add_argument("--predictor", default=None, help="dlzs, pooled or pade (default: the method's)")
    ap.add_argument("--block-q", type=int, default=128)
    ap.add_argument("--block-k", type=int, default=64)
    ap.add_argument("--decode-lengths", type=int, nargs="*", default=[8192, 32768, 131072])
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--no-flex", action="store_true", help="skip FlexAttention")
    ap.add_argument("--no-prefill", action="store_true", help="skip the prefill sweep (e.g. perplexity alone)")
    ap.add_argument("--ppl", action="store_true", help="also SmolLM2 perplexity: dense, star_block, star_gpu")
    ap.add_argument("--ppl-tokens", type=int, nargs="+", default=[4096, 8192])
    ap.add_argument("--ppl-layers", type=int, nargs="*", default=None, help="patched layers (default: every one)")
    ap.add_argument("--text", default="moby-dick")
    ap.add_argument("--quick", action="store_true", help="B=1, 32/8 heads, N 4k..32k, densities 1/0.25/0.1")
    ap.add_argument("--dry-run", action="store_true", help="the same pipeline on the CPU, Triton's interpreter, "
                    "tiny sizes, wall-clock timing: checks the script, measures nothing")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--stem", default="bench_gpu", help="output file names (<stem>.json, <stem>.md)")
    argv = sys.argv[1:] if argv is None else argv
    if "--quick" in argv:
        ap.set_defaults(**QUICK)
    if "--dry-run" in argv:
        ap.set_defaults(**DRY_RUN)
    return ap.parse_args(argv)


# Sizes of --quick and --dry-run: defaults, so options given beside them still win.
QUICK = {"batches": [1], "kv_heads": [8], "lengths": [4096, 8192, 16384, 32768], "densities": [1.0, 0.25, 0.1],
         "decode_lengths": [32768], "repeats": 5}
DRY_RUN = {"batches": [1], "heads": 4, "kv_heads": [2], "dim": 64, "lengths": [128], "densities": [1.0, 0.25],
           "decode_lengths": [128], "repeats": 1, "warmup": 0, "causal": "causal", "block_q": 32, "ppl_tokens": [64],
           "ppl_layers": [0, 15]}


def sweep(args: argparse.Namespace, results: dict) -> None:
    """The prefill and decode rows, each appended to ``results`` and written as soon as it is measured."""
    causal = {"both": [True, False], "causal": [True], "full": [False]}[args.causal]
    for b in args.batches:
        for hkv in args.kv_heads:
            for dtype in args.dtypes:
                for c in causal:
                    for n in [] if args.no_prefill else args.lengths:
                        for dens in args.densities:
                            results["prefill"].append(one_config(b, args.heads, hkv, n, dens, c, args, dtype))
                            _progress(results, args)
                for n in args.decode_lengths:
                    for dens in args.densities:
                        results["decode"].append(decode_config(b, args.heads, hkv, n, dens, args, dtype))
                        _progress(results, args)


def _progress(results: dict, args: argparse.Namespace) -> None:
    rows = results["decode"] or results["prefill"]
    print(json.dumps(rows[-1]), flush=True)
    results["break_even"] = break_even(results["prefill"])
    results["targets"] = targets(results["prefill"], results["break_even"], results["ppl"])
    write(results, args.out, args.stem)
    if DEVICE == "cuda":
        torch.cuda.empty_cache()


def environment(args: argparse.Namespace) -> dict:
    import triton

    device = torch.cuda.get_device_name() if DEVICE == "cuda" else f"cpu (dry run, {platform.machine()})"
    return {"benchmark": "bench_gpu", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "device": device, "driver": _driver(), "torch": torch.__version__, "triton": triton.__version__,
            "python": platform.python_version(), "predictor": args.predictor or "default", "block_q": args.block_q,
            "block_k": args.block_k, "repeats": args.repeats, "dry_run": args.dry_run,
            "statistic": "median of CUDA-event times" if DEVICE == "cuda" else "median wall-clock time (dry run)"}


def _driver() -> str | None:
    """The NVIDIA driver version (``nvidia-smi``), or ``None`` without one."""
    import subprocess

    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20, check=False).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.splitlines()[0] if out else None


def main(argv: list[str] | None = None) -> None:
    global DEVICE
    args = parse(argv)
    if args.dry_run:
        DEVICE = "cpu"
    elif not torch.cuda.is_available():
        print("bench_gpu.py needs a CUDA GPU: torch.cuda.is_available() is False here, so nothing was measured "
              "(--dry-run runs the pipeline on CPU; the kernels' logic is tested with TRITON_INTERPRET=1: pytest "
              "tests/kernels).", file=sys.stderr)
        sys.exit(2)
    torch.set_grad_enabled(False)
    results: dict[str, Any] = {"meta": environment(args), "prefill": [], "decode": [], "break_even": [],
                               "targets": [], "ppl": []}
    sweep(args, results)
    if args.ppl:
        results["ppl"] = ppl_rows(args)
        results["targets"] = targets(results["prefill"], results["break_even"], results["ppl"])
    write(results, args.out, args.stem)
    print(f"wrote {args.out / args.stem}.json and .md")


if __name__ == "__main__":
    main()
