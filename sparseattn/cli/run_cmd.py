"""``sparseattn run`` (and ``make run``): the main job, from a real model to simulated accelerators, one report."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..core.errors import SparseAttnError
from ..job.progress import Status, eta_text
from ..report.html import significant
from ._app import app, console, fail
from .options import flag


def _csv(value: str | None) -> list[str] | None:
    return None if value is None else [v.strip() for v in value.split(",") if v.strip()]


def _latest_run(root: Path) -> Path | None:
    runs = sorted(p for p in root.glob("*") if (p / "results.json").exists()) if root.is_dir() else []
    return runs[-1] if runs else None


def default_out(resume: bool, root: Path = Path("runs")) -> Path:
    """The default output directory: the latest run under ``root`` when resuming, else a new timestamped one.
    ``root`` is git-ignored, so a fresh clone lacks it; it is created here (a user's own ``--out`` is not)."""
    latest = _latest_run(root) if resume else None
    if latest is not None:
        return latest
    root.mkdir(parents=True, exist_ok=True)
    return root / datetime.now().strftime("%Y%m%d-%H%M%S")


@app.command("run")
def run_cmd(
    config: Path = typer.Option(None, help="run.yaml with the same options as keys (command-line options win)"),
    model: str = typer.Option(None, help="decoder: bundled name, .gguf file, HF directory or cached id"),
    encoder: str = typer.Option(None, help="encoder for the BERT-style rows ('none' to skip)"),
    text: str = typer.Option(None, help="bundled text name or a path to a UTF-8 file"),
    tokens: int = typer.Option(None, help="decoder window in tokens (default 1024; 256 with --quick)"),
    methods: str = typer.Option(None, help="comma-separated methods (default: the oracles, the papers' and the "
                                "baselines' methods)"),
    archs: str = typer.Option(None, "--archs", help="comma-separated GPU models to compare with (default a100,h100)"),
    out: Path = typer.Option(None, help="output directory (default runs/<timestamp>)"),
    budgets: str = typer.Option(None, help="loss budgets of the equal-accuracy step, e.g. 1%,2% ('none' to skip)"),
    calib_text: str = typer.Option(None, help="text the equal-accuracy step calibrates on (default sotu)"),
    device: str = typer.Option(None, help="cpu or cuda"),
    quick: bool = flag(False, "quick", help="a smaller job (under 2 minutes on 2 cores)"),
    resume: bool = flag(False, "resume", help="continue the run in --out (default: the latest in runs/)"),
    restart: bool = flag(False, "restart", help="move --out's results.json aside and start afresh"),
) -> None:
    """The main job: every method in a real model (accuracy), its traces on the accelerators and GPUs
    (simulated), the papers' claims, Spatial-STAR; writes results.json, CSV tables, figures and report.html."""
    from ..job.config import load_config
    from ..job.runner import run_job

    start = time.perf_counter()
    try:
        given = {"model": model, "encoder": encoder, "text": text, "tokens": tokens, "methods": _csv(methods),
                 "gpus": _csv(archs), "device": device, "quick": quick or None}
        overrides = {k: v for k, v in given.items() if v is not None}
        if budgets is not None:
            from .calibrate_cmd import parse_budgets

            overrides["budgets"] = [] if budgets.lower() in ("none", "null", "") else parse_budgets(budgets)
        if calib_text is not None:
            overrides["calib_text"] = calib_text
        if encoder is not None and encoder.lower() in ("none", "null", ""):
            overrides["encoder"] = None  # skip the encoder rows
        cfg = load_config(config, overrides)
        if out is None:
            out = default_out(resume)
        with _display() as show:
            store, report = run_job(cfg, out, resume, restart, show)
    except SparseAttnError as err:
        fail(str(err))
        return
    _summary(store, report, time.perf_counter() - start)


@contextmanager
def _display() -> Iterator[Callable[[Status], None]]:
    """Where the job's progress goes: a live bar on a terminal (step i of n, unit i of n, time left), one line per
    unit otherwise (logs, CI)."""
    if not console.is_terminal:
        yield lambda s: console.print(s.line(), soft_wrap=True, highlight=False, markup=False)
        return
    columns = (SpinnerColumn(), TextColumn("[bold]step {task.fields[step]}"), BarColumn(bar_width=20),
               TextColumn("{task.fields[unit]}"), TextColumn("{task.description}"), TimeElapsedColumn(),
               TextColumn("{task.fields[eta]}"))
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("checking the options", total=1.0, step="", unit="", eta="")

        def show(s: Status) -> None:
            done = (s.step - 1 + (s.unit - 1) / s.units if s.units and s.unit else s.step - 1) / max(1, s.steps)
            unit = f"{s.unit_name} {s.unit}/{s.units}" if s.units and s.unit else ""
            bar.update(task, completed=done, description=s.detail, step=f"{s.step}/{s.steps} {s.name}", unit=unit,
                       eta=eta_text(s.seconds_left))

        yield show


def _summary(store, report: Path, seconds: float) -> None:
    console.print(summary_table(store))
    console.print(f"report: {report}  ({seconds:.0f} s; results.json, tables/, figures/ beside it)", soft_wrap=True)


def summary_table(store) -> Table:
    """Per method: density and perplexity change (measured), the top-k oracle at that density, and its own
    accelerator against the GPU (simulated); narrow enough for an 80-column terminal, no name or number cut."""
    from ..job.runner import summary_rows

    rows = summary_rows(store)
    gpu = next((r.gpu.upper() for r in rows if r.speedup is not None), "GPU")
    table = Table(title=f"{store.config.model}: every method in every layer", title_justify="left",
                  caption=f"density, perplexity: measured in the model; speed-up, energy efficiency: simulated, "
                  f"each method's accelerator vs the {gpu}", caption_justify="left")
    table.add_column("method", no_wrap=True)
    for head in ("density", "perplexity\nvs dense", "top-k at\nsame dens.", f"speed-up\nvs {gpu}",
                 f"energy eff.\nvs {gpu}"):
        table.add_column(head, justify="right", no_wrap=True)
    for r in rows:
        sp = "-" if r.speedup is None else f"{significant(r.speedup)}x"
        en = "-" if r.energy is None else f"{significant(r.energy)}x"
        table.add_row(r.method, f"{r.density:.3f}", f"{100 * r.ppl_change:+.1f}%", f"{100 * r.oracle_change:+.1f}%",
                      sp, en)
    return table
