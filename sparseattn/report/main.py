"""Running the main job end to end: check everything first, then the steps, then the report."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..core.errors import InvalidParameterError
from ..core.files import check_out_dir, set_aside
from .job import ResultStore, RunConfig
from .render import hardware_rows, write_report
from .steps import (
    accuracy_step,
    dse_step,
    encoder_step,
    hardware_step,
    kernels_step,
    reproduce_step,
    spatial_step,
)

Tick = Callable[[str], None]


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


def run_job(cfg: RunConfig, out: Path, resume: bool = False, restart: bool = False,
            tick: Tick = lambda _: None) -> tuple[ResultStore, Path]:
    """Run (or resume) the main job into ``out``; returns the store and the report's path."""
    from ..models.loader import load_model

    cfg = cfg.effective()
    check_before_work(cfg, out)
    if restart and (out / "results.json").exists():
        set_aside(out / "results.json")
    store = ResultStore(out, cfg).open(resume)
    store.save()
    tick(f"loading {cfg.model}")
    lm = load_model(cfg.model, device=cfg.device)
    accuracy_step(cfg, store, lm, tick)
    if cfg.encoder:
        tick(f"loading {cfg.encoder}")
        encoder_step(cfg, store, load_model(cfg.encoder, device=cfg.device), tick)
    hardware_step(cfg, store, tick)
    reproduce_step(cfg, store, tick)
    spatial_step(cfg, store, tick)
    dse_step(cfg, store, tick)
    kernels_step(cfg, store, tick)
    tick("writing figures, tables and report.html")
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
