"""Running the main job end to end: check everything first, then the steps, then the report."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..core.errors import InvalidParameterError
from ..core.files import check_out_dir, set_aside
from . import progress
from .equal_accuracy import calibrate_step, calibrated_methods, calibration_unit_s
from .job import ResultStore, RunConfig
from .progress import Status, StepPlan, Tracker
from .render import hardware_rows, write_report
from .steps import (
    accelerators_of,
    accuracy_step,
    dse_step,
    encoder_step,
    hardware_step,
    kernels_step,
    reproduce_step,
    spatial_step,
)


def check_before_work(cfg: RunConfig, out: Path) -> None:
    """Everything that can be checked without loading a model: the output directory, the text (UTF-8, long enough
    for the window), the models' names and context, the shapes."""
    from ..eval.corpora import load_text
    from ..hw import load_model_shape
    from ..models.loader import check_text_fits, load_tokenizer

    parent = out if out.exists() else out.parent
    check_out_dir(out)
    if not parent.exists():
        raise InvalidParameterError(f"--out {str(out)!r}: directory {str(parent)!r} does not exist")
    text = load_text(cfg.text)
    _, kind, _ = load_tokenizer(cfg.model)
    if kind != "decoder":
        raise InvalidParameterError(f"--model {cfg.model!r} is an encoder; the main job's model is a decoder (give "
                                    "encoders with --encoder)")
    check_text_fits(cfg.model, text, cfg.tokens)
    if cfg.encoder:
        _, ekind, _ = load_tokenizer(cfg.encoder)
        if ekind != "encoder":
            raise InvalidParameterError(f"--encoder {cfg.encoder!r} is a decoder")
    for name in (cfg.decoder_shape, cfg.encoder_shape):
        load_model_shape(name)


def _left(store: ResultStore, step: str, units: list[str]) -> int:
    return sum(store.get(step, u) is None for u in units)


def plan_job(cfg: RunConfig, store: ResultStore) -> list[StepPlan]:
    """The steps this run will do and how many units each has left (a resumed run counts only what is missing),
    with each unit's nominal cost (:mod:`sparseattn.report.progress`)."""
    from ..hw.spatial.sweep import DESIGNS

    methods = ["dense", *cfg.methods]
    plan = [StepPlan("accuracy", "method", _left(store, "accuracy", methods),
                     progress.DECODER_UNIT_S_PER_1K_TOKENS * cfg.tokens / 1024, progress.LOAD_MODEL_S)]
    if cfg.encoder:
        plan.append(StepPlan("encoder", "method", _left(store, "encoder", methods),
                             progress.ENCODER_UNIT_S_PER_2K_TOKENS * cfg.passages * cfg.encoder_tokens / 2048,
                             progress.LOAD_MODEL_S))
    kinds = ["decoder", *(["encoder"] if cfg.encoder else [])]
    sims = [f"{a}@{k}" for k in kinds for a in [*cfg.gpus, *(a for m in cfg.methods for a in accelerators_of(m))]]
    optional = [("hardware", "simulation", _left(store, "hardware", sims), progress.HARDWARE_UNIT_S),
                ("reproduce", "claim set", int(cfg.reproduce) * _left(store, "reproduce", ["claims"]),
                 progress.REPRODUCE_S),
                ("spatial", "point", int(cfg.spatial) * len(cfg.spatial_seqs) * len(DESIGNS)
                 * _left(store, "spatial", ["rows"]), progress.SPATIAL_POINT_S),
                ("dse", "search", int(cfg.dse_trials > 0) * _left(store, "dse", ["summary"]),
                 progress.DSE_TRIAL_S * cfg.dse_trials),
                ("kernels", "length", 2 * int(cfg.device == "cuda") * _left(store, "kernels", ["rows"]), 5.0),
                ("calibration", "method", _left(store, "calibration", calibrated_methods(cfg)) if cfg.budgets else 0,
                 calibration_unit_s(cfg))]
    plan += [StepPlan(name, unit, n, cost) for name, unit, n, cost in optional if n > 0]
    return [*plan, StepPlan("report", "part", 0, 0.0, progress.REPORT_S)]


def run_job(cfg: RunConfig, out: Path, resume: bool = False, restart: bool = False,
            show: Callable[[Status], None] = lambda _: None) -> tuple[ResultStore, Path]:
    """Run (or resume) the main job into ``out``, calling ``show`` with the progress (step i of n, unit i of n,
    time left) at every unit; returns the store and the report's path."""
    from ..models.loader import load_model

    cfg = cfg.effective()
    check_before_work(cfg, out)
    if restart and (out / "results.json").exists():
        set_aside(out / "results.json")
    store = ResultStore(out, cfg).open(resume)
    store.save()
    tick = Tracker(plan_job(cfg, store), show)
    tick.begin("accuracy", f"loading {cfg.model}")
    lm = load_model(cfg.model, device=cfg.device)
    accuracy_step(cfg, store, lm, tick)
    if cfg.encoder:
        tick.begin("encoder", f"loading {cfg.encoder}")
        encoder_step(cfg, store, load_model(cfg.encoder, device=cfg.device), tick)
    for name, step in (("hardware", hardware_step), ("reproduce", reproduce_step), ("spatial", spatial_step),
                       ("dse", dse_step), ("kernels", kernels_step)):
        tick.begin(name)
        step(cfg, store, tick)
    tick.begin("calibration")
    calibrate_step(cfg, store, lm, tick)
    tick.begin("report", "writing figures, tables and report.html")
    return store, write_report(store)


def summary_rows(store: ResultStore) -> list[dict[str, Any]]:
    """One line per method for the terminal: accuracy, and its accelerator against the H100 (or first GPU)."""
    acc = store.data["steps"].get("accuracy", {})
    hw = {r["method"]: r for r in hardware_rows(store) if r["workload"] == "decoder"}
    rows = []
    for m, r in acc.items():
        if m == "dense":
            continue
        h = hw.get(m)
        gpu = next(iter(sorted(h["vs"], reverse=True)), None) if h else None
        rows.append({"method": m, "density": r["density"], "ppl_change": r["ppl_change"],
                     "oracle_change": r["oracle"]["ppl_change"], "arch": h["arch"] if h else "-",
                     "gpu": gpu or "-", "speedup": h["vs"][gpu]["speedup"] if gpu else None,
                     "energy": h["vs"][gpu]["energy"] if gpu else None})
    return rows
