"""Running the main job end to end: check everything first, then every enabled step of :data:`STEPS` in order
(each timed, each finished unit stored at once), then the report."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import InvalidParameterError
from ..core.files import check_out_dir, set_aside
from . import progress
from .config import RunConfig
from .progress import Status, StepPlan, Tracker
from .step import Context, Step
from .steps import STEPS
from .store import Clock, ResultStore


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


def enabled_steps(cfg: RunConfig, steps: tuple[Step, ...] = STEPS) -> list[Step]:
    """The steps this configuration runs, in the order of :data:`STEPS`."""
    return [s for s in steps if s.enabled(cfg)]


def plan_job(cfg: RunConfig, store: ResultStore, steps: tuple[Step, ...] = STEPS) -> list[StepPlan]:
    """The steps this run will do and how many units each has left (a resumed run counts only what is missing),
    with each unit's nominal cost (:mod:`sparseattn.job.progress`); a step with nothing left and no fixed cost is
    not shown. The report is the last step."""
    plan = []
    for s in enabled_steps(cfg, steps):
        n, fixed = s.progress_units(cfg, store), s.fixed_s(cfg)
        if n > 0 or fixed > 0:
            plan.append(StepPlan(s.name, s.unit_name, n, s.unit_s(cfg), fixed))
    return [*plan, StepPlan("report", "part", 0, 0.0, progress.REPORT_S)]


def run_step(step: Step, ctx: Context) -> None:
    """Run one step, storing every unit it finishes as soon as it is done, and time it."""
    with Clock(ctx.store, step.name):
        for done in step.run(ctx):
            ctx.store.put(done.table or step.name, done.unit, done.row)


def write_report(store: ResultStore, steps: tuple[Step, ...] = STEPS) -> Path:
    """Figures, CSV tables and ``report.html`` from the store, each step drawing its own section."""
    from ..report.render import make_figures, write_page, write_tables

    view = store.view()
    figs = make_figures(view)
    write_tables(view)
    return write_page(view, [(s.title, s.section(view, figs)) for s in steps])


def run_job(cfg: RunConfig, out: Path, resume: bool = False, restart: bool = False,
            show: Callable[[Status], None] = lambda _: None) -> tuple[ResultStore, Path]:
    """Run (or resume) the main job into ``out``, calling ``show`` with the progress (step i of n, unit i of n,
    time left) at every unit; returns the store and the report's path."""
    cfg = cfg.effective()
    check_before_work(cfg, out)
    if restart and (out / "results.json").exists():
        set_aside(out / "results.json")
    store = ResultStore(out, cfg).open(resume)
    store.save()
    tick = Tracker(plan_job(cfg, store), show)
    ctx = Context(cfg, store, tick)
    for step in enabled_steps(cfg):
        tick.begin(step.name, step.start(cfg))
        run_step(step, ctx)
    tick.begin("report", "writing figures, tables and report.html")
    return store, write_report(store)


@dataclass(frozen=True)
class SummaryRow:
    """One method in the terminal's summary: its accuracy (measured) and its accelerator against a GPU
    (simulated; ``None`` without one)."""

    method: str
    density: float
    ppl_change: float
    oracle_change: float
    arch: str
    gpu: str
    speedup: float | None
    energy: float | None


def summary_rows(store: ResultStore) -> list[SummaryRow]:
    """One line per method for the terminal: accuracy, and its accelerator against the H100 (or first GPU)."""
    from ..report.render import hardware_rows

    view = store.view()
    hw = {h.row.method: h for h in hardware_rows(view) if h.row.workload == "decoder"}
    rows = []
    for m, r in view.accuracy().items():
        if m == "dense" or r.oracle is None or r.ppl_change is None:
            continue
        h = hw.get(m)
        gpu = next(iter(sorted(h.vs, reverse=True)), None) if h else None
        vs = h.vs[gpu] if h and gpu else None
        rows.append(SummaryRow(m, r.density, r.ppl_change, r.oracle.ppl_change, h.row.arch if h else "-",
                               gpu or "-", vs.speedup if vs else None, vs.energy if vs else None))
    return rows
