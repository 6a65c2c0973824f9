"""Equal accuracy on SmolLM2-135M: every method's density knob calibrated to +1% and +2% perplexity on SOTU and
judged on Moby-Dick, then its accelerator simulated at that setting -- the main job's ``calibrate`` step
(:mod:`sparseattn.job.steps.calibration`) run alone with a fresh measurement cache, so its wall time is what the step
adds to ``make run``.

Written to ``benchmarks/results/calibrate/``: ``bench_calibrate.json`` (the configuration, the machine's load
average before and after, the step's wall time and per-method seconds, every calibration row and every
equal-accuracy row with its simulated accelerator) and ``bench_calibrate.md``. The targets are measured and
reported, not tuned: every method reaches +2% (or the row says why not); PADE's density at +2% within 1.3x of the
threshold oracle's; the step within 4 minutes on 2 cores.

The README's equal-accuracy table is regenerated from the JSON (``--docs-only``: the markdown and that table alone,
from the committed JSON).

``python benchmarks/bench_calibrate.py [--tokens 256]`` (the job's default window; a few minutes on 2 idle cores).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch

from sparseattn.core.files import write_atomic
from sparseattn.job.config import DEFAULT_METHODS, RunConfig
from sparseattn.job.runner import run_step
from sparseattn.job.step import Context
from sparseattn.job.steps.calibration import Calibration
from sparseattn.job.store import ResultStore
from sparseattn.models import load_model
from sparseattn.report.calibration import calibration_markdown, write_readme_table
from sparseattn.report.equal_accuracy import equal_accuracy_rows

RESULTS = Path(__file__).parent / "results" / "calibrate"
TARGET_S, PADE_RATIO = 240.0, 1.3


def targets(rows: list[dict], wall: float, cpu: float | None) -> dict:
    """The three targets, as measured. On a shared machine the wall time overstates the step; its CPU time over 2
    (both cores busy) to its CPU time (one busy) brackets what it takes on 2 idle cores."""
    at2 = {r["method"]: r for r in rows if r["budget"] == 0.02}
    pade, thr = at2.get("pade"), at2.get("threshold")
    ratio = pade["judge_density"] / thr["judge_density"] if pade and thr else None
    ratio_cal = pade["calib_density"] / thr["calib_density"] if pade and thr else None
    return {"unreached_at_2pct": {m: r["note"] for m, r in at2.items() if not r["reached"]},
            "pade_over_threshold_density_at_2pct_judged": ratio, "pade_over_threshold_density_at_2pct_calib": ratio_cal,
            "pade_within_1_3x": None if ratio is None else ratio <= PADE_RATIO,
            "step_seconds": wall, "step_cpu_seconds": cpu,
            "idle_2_core_bracket_s": None if cpu is None else [cpu / 2, cpu], "step_within_4_min": wall <= TARGET_S,
            "idle_bracket_within_4_min": None if cpu is None else [cpu / 2 <= TARGET_S, cpu <= TARGET_S]}


def pade_densest(lm, tokens: int, cache: Path) -> dict:
    """PADE at its knob's densest end (largest radius, the paper's alpha 0.5) on both texts, with its integer
    datapath (``formal='integer'``, the default) and with exact arithmetic on the kept pairs (``formal='exact'``):
    what PADE loses before it prunes anything."""
    from sparseattn.eval.calibrate import knob_value, window_scorer
    from sparseattn.methods import knobs_of

    radius = knob_value(knobs_of("pade")[0], 0.0)
    rows = []
    for text in ("sotu", "moby-dick"):
        scorer = window_scorer(lm, text, tokens, cache_dir=cache)
        for formal in ("integer", "exact"):
            p = scorer.measure("pade", {"alpha": 0.5, "radius": radius, "formal": formal})
            rows.append({"text": text, "formal": formal, "radius": radius, "loss": p.loss, "density": p.density})
    return {"tokens": tokens, "rows": rows}


def _pade_line(probe: dict | None) -> list[str]:
    if not probe:
        return []
    by = {(r["text"], r["formal"]): r for r in probe["rows"]}
    parts = [f"{t}: {by[(t, 'integer')]['loss']:+.2%} integer (density {by[(t, 'integer')]['density']:.3f}), "
             f"{by[(t, 'exact')]['loss']:+.2%} exact" for t in dict.fromkeys(r["text"] for r in probe["rows"])]
    return [f"PADE at its densest setting (radius={probe['rows'][0]['radius']:g}, alpha=0.5, {probe['tokens']} "
            "tokens), where it prunes almost nothing, with its integer datapath (formal='integer') and with exact "
            f"arithmetic on the kept pairs (formal='exact') -- {'; '.join(parts)}: what it loses there is its "
            "integer arithmetic, not its pruning, so a budget below that loss can be met only at sparser settings "
            "whose loss happens to be lower (a loss not monotone in radius)."]


def _cpu(cpu: float | None) -> str:
    if cpu is None:
        return "CPU time not measured (results of an interrupted run)"
    return f"CPU time {cpu:.0f} s, so {cpu / 2:.0f}-{cpu:.0f} s on 2 idle cores"


def markdown(data: dict) -> str:
    c, t = data["config"], data["targets"]
    lines = [f"# Equal accuracy on {c['model']} ({c['calib_tokens']}-token windows, every layer sparse)", "",
             f"Step wall time {data['wall_s']:.0f} s on {data['threads']} threads (load average before "
             f"{data['load_before'][0]:.1f}, after {data['load_after'][0]:.1f} on {data['cpus']} CPUs: the machine was "
             f"shared); {_cpu(data['cpu_s'])}; target {TARGET_S:.0f} s: wall "
             f"{'met' if t['step_within_4_min'] else 'missed'}.",
             f"PADE / threshold-oracle density at +2% (judged): {t['pade_over_threshold_density_at_2pct_judged']:.2f}x "
             f"(calibration text {t['pade_over_threshold_density_at_2pct_calib']:.2f}x); target <= {PADE_RATIO}x.",
             "Unreached or not measurable at +2%: "
             + ("; ".join(f"{m}: {n}" for m, n in t["unreached_at_2pct"].items()) or "none") + ".",
             *_pade_line(data.get("pade_densest")),
             "", calibration_markdown(data["rows"]), "", "## At the calibrated settings, on each method's accelerator",
             "", "| design | budget | density | ppl change | latency ms | energy mJ | EDP mJ*ms | top-k oracle "
             "density | threshold oracle density |", "|---|---|---|---|---|---|---|---|---|"]
    for r in data["equal_accuracy"]:
        if r["arch"] is None:
            continue
        state = "" if r["reached"] else (" not measurable" if not r.get("measurable", True) else " unreached")
        lines.append(f"| {r['method']} ({r['arch']}){state} | +{r['budget']:.0%} | {r['density']:.3f} | "
                     f"{r['loss']:+.2%} | "
                     f"{r['latency_ms']:.3g} | {r['energy_mj']:.3g} | {r['edp']:.3g} | {r['topk_density']:.3f} | "
                     f"{r['threshold_density']:.3f} |")
    lines += ["", "Per-method seconds: " + ", ".join(f"{m} {s:.0f}" for m, s in data["method_seconds"].items())]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tokens", type=int, default=256, help="calibration and judgement window (job default 256)")
    ap.add_argument("--methods", default=",".join(DEFAULT_METHODS),
                    help="comma-separated methods, calibrated in this order (default: the main job's)")
    ap.add_argument("--work", type=Path, default=None, help="working directory (default: a fresh temporary one); "
                    "a rerun with the same one resumes from its measurement cache, and its wall time is then partial")
    ap.add_argument("--docs-only", action="store_true", help="only regenerate bench_calibrate.md and the README's "
                    "equal-accuracy table from the committed bench_calibrate.json")
    ap.add_argument("--pade-densest", action="store_true", help="only measure PADE at its densest setting with its "
                    "integer datapath and with exact arithmetic, into the committed bench_calibrate.json")
    ap.add_argument("--from-work", action="store_true", help="write the results of the methods --work already holds "
                    "without measuring more (an interrupted run; its wall time is then the methods' own seconds)")
    args = ap.parse_args()
    if args.docs_only:
        data = json.loads((RESULTS / "bench_calibrate.json").read_text())
        write_atomic(RESULTS / "bench_calibrate.md", markdown(data))
        print(f"wrote {RESULTS / 'bench_calibrate.md'} and {write_readme_table()}")
        return
    torch.set_grad_enabled(False)
    torch.set_num_threads(2)
    if args.pade_densest:
        data = json.loads((RESULTS / "bench_calibrate.json").read_text())
        with tempfile.TemporaryDirectory() as tmp:
            data["pade_densest"] = pade_densest(load_model(data["config"]["model"]), data["config"]["calib_tokens"],
                                                Path(tmp))
        write_atomic(RESULTS / "bench_calibrate.json", json.dumps(data, indent=1))
        write_atomic(RESULTS / "bench_calibrate.md", markdown(data))
        print(markdown(data))
        return
    cfg = RunConfig(methods=[m.strip() for m in args.methods.split(",") if m.strip()], budgets=[0.01, 0.02],
                    calib_tokens=args.tokens)
    lm = load_model(cfg.model)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:  # a fresh cache: every point is measured
        store = ResultStore(args.work or Path(tmp), cfg).open(resume=True)
        start, cpu_start = time.perf_counter(), time.process_time()
        if not args.from_work:
            tick = lambda d, **_: print(f"[{time.perf_counter() - start:6.0f} s] {d}", flush=True)  # noqa: E731
            run_step(Calibration(), Context(cfg, store, tick, models={cfg.model: lm}))
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        if args.from_work:
            wall = sum(max(r.seconds for r in rows) for rows in store.table("calibration").values())
            cpu = None
        rows = [r.model_dump() for m in store.table("calibration").values() for r in m]
        ea = [r.to_dict() for r in equal_accuracy_rows(store.view())]
    seconds = {}
    for r in rows:
        seconds[r["method"]] = max(seconds.get(r["method"], 0.0), r["seconds"])
    data = {"config": {"model": cfg.model, "calib_text": cfg.calib_text, "judge_text": cfg.text,
                       "calib_tokens": cfg.calib_tokens, "budgets": cfg.budgets, "methods": cfg.methods,
                       "decoder_shape": cfg.decoder_shape, "decoder_seq": cfg.decoder_seq},
            "threads": torch.get_num_threads(), "cpus": os.cpu_count(), "load_before": load_before,
            "load_after": os.getloadavg(), "wall_s": wall, "cpu_s": cpu,
            "method_seconds": seconds,
            "rows": rows, "equal_accuracy": ea}
    data["targets"] = targets(rows, wall, cpu)
    RESULTS.mkdir(parents=True, exist_ok=True)
    write_atomic(RESULTS / "bench_calibrate.json", json.dumps(data, indent=1))
    write_atomic(RESULTS / "bench_calibrate.md", markdown(data))
    write_readme_table()
    print(markdown(data))


if __name__ == "__main__":
    main()
