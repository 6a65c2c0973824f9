"""``sparseattn dse``: design-space exploration (``run``, ``check``, ``report``, ``accuracy``, ``spaces``).

    sparseattn dse run star-tiling --sampler gp --n-trials 60            # SQLite in runs/dse/star-tiling/
    sparseattn dse run my-space.yaml --ray-address auto --storage postgresql://user@db/dse
    sparseattn dse run star-tiling --seq 16384 --ray                      # an embedded local Ray
    sparseattn dse report star-tiling --storage sqlite:///runs/dse/star-tiling/study.db
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from ..core.errors import SparseAttnError
from ..core.files import check_out_dir
from ._app import app, console, fail
from .options import flag

dse_app = typer.Typer(no_args_is_help=True, help="Design-space exploration: Bayesian search over tiling, "
                      "architecture and method parameters (Optuna; local pool or Ray; resumable).")
app.add_typer(dse_app, name="dse")

SPACE_ARG = typer.Argument(..., help="bundled space name (sparseattn dse spaces) or a YAML path")
SEQ_OPT = typer.Option(None, help="override the space's workload.seq")


def _space(space: str, seq: int | None) -> Any:
    from ..dse import load_space

    return load_space(space, **({"seq": seq} if seq else {}))


def _out(out: Path | None, name: str) -> Path:
    return out or Path("runs") / "dse" / name


def _check_counts(positive: dict[str, int | None], non_negative: dict[str, int | None]) -> None:
    """Counts given on the command line are used as given, or refused: never replaced by a default."""
    for option, value in positive.items():
        if value is not None and value < 1:
            raise SparseAttnError(f"{option} {value}: must be at least 1")
    for option, value in non_negative.items():
        if value is not None and value < 0:
            raise SparseAttnError(f"{option} {value}: must be at least 0")


def _check_seq(seq: int | None) -> None:
    """The same bounds as ``sparseattn simulate`` (one base tile at least; the simulator's validated range)."""
    from ..core.invariants import check_size
    from .simulate_cmd import MIN_SEQ

    if seq is not None and seq < MIN_SEQ:
        raise SparseAttnError(f"--seq {seq}: a trial simulates a prefill of at least {MIN_SEQ} tokens (one base tile)")
    if seq is not None:
        check_size(seq)


@dse_app.command("run")
def run_cmd(
    space: str = SPACE_ARG,
    seq: int = SEQ_OPT,
    sampler: str = typer.Option(None, help="tpe | gp | grid | random (default: the space's search.sampler)"),
    n_trials: int = typer.Option(None, help="finished trials the study should hold (default: the space's)"),
    seed: int = typer.Option(None, help="sampler seed (default: the space's search.seed)"),
    storage: str = typer.Option(None, help="Optuna storage URL (default: sqlite:///<out>/study.db)"),
    study: str = typer.Option(None, help="study name (default: the space's name; with --seq, name-<seq>)"),
    out: Path = typer.Option(None, help="output directory (default: runs/dse/<study>)"),
    workers: int = typer.Option(None, help="local worker processes (default: CPU count; 1 runs in-process)"),
    batch: int = typer.Option(None, help="trials asked per batch (default: the worker count)"),
    ray: bool = flag(False, "ray", help="run trials as Ray tasks on an embedded local Ray"),
    ray_address: str = typer.Option(None, help="run trials as Ray tasks on this cluster ('auto' or an address)"),
    n_startup: int = typer.Option(None, help="random trials before TPE/GP model (Optuna's default 10)"),
    progress: bool = flag(True, "progress", help="show the progress bar"),
) -> None:
    """Run (or resume) a study and write best.yaml / pareto-*.yaml, trials.csv, summary.json and plots."""
    from ..dse import StudyConfig, run_study, write_outputs
    from ..dse.study import check_storage

    try:
        _check_counts({"--n-trials": n_trials, "--workers": workers, "--batch": batch}, {"--n-startup": n_startup})
        _check_seq(seq)
        s = _space(space, seq)
        name = study or (s.file.name if not seq else f"{s.file.name}-{seq}")
        d = s.file.search
        cfg = StudyConfig(sampler=sampler or d.sampler, n_trials=d.n_trials if n_trials is None else n_trials,
                          seed=d.seed if seed is None else seed, storage=storage, study_name=name,
                          out=check_out_dir(_out(out, name)), workers=workers, batch=batch, ray=ray,
                          ray_address=ray_address, n_startup=n_startup, progress=progress)
        if storage is not None:
            check_storage(storage)
        result = run_study(s, cfg)
        paths = write_outputs(s, result, cfg.out)
    except (SparseAttnError, ValueError) as err:
        fail(str(err))
        return
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: finished trials are in the storage; run the same command to resume[/]")
        raise typer.Exit(code=130) from None
    _print_best(s, result)
    console.print(f"{result.evaluated} points evaluated in {result.wall_s:.1f} s on {result.executor} "
                  f"({result.workers} workers); storage {result.storage}")
    for note in result.notes:
        console.print(f"[dim]{note}[/]")
    console.print("outputs: " + ", ".join(str(p) for p in paths.values()))


def _print_best(space: Any, result: Any) -> None:
    table = Table(title=f"{space.file.name}: best of {len(result.records)} trials"
                  + (" (Pareto front)" if len(space.objectives) > 1 else ""))
    table.add_column("trial", justify="right")
    for name in space.objective_names:
        table.add_column(name, justify="right")
    table.add_column("point")
    for r in result.best[:15]:
        table.add_row(str(r.number), *[f"{r.objectives[n]:.5g}" for n in space.objective_names],
                      ", ".join(f"{k}={v}" for k, v in r.point.items()))
    console.print(table)


@dse_app.command("check")
def check_cmd(space: str = SPACE_ARG, seq: int = SEQ_OPT) -> None:
    """Validate a space against the real architecture, mapping and method, and show its dimensions."""
    try:
        _check_seq(seq)
        s = _space(space, seq)
    except (SparseAttnError, ValueError) as err:
        fail(str(err))
        return
    table = Table(title=f"{s.file.name}: {s.file.workload.arch} on {s.shape_name} at {s.file.workload.seq} tokens")
    table.add_column("parameter")
    table.add_column("targets")
    table.add_column("values")
    for d in s.dims:
        vals = d.values()
        shown = ", ".join(map(str, vals[:8])) + (f", ... ({len(vals)})" if len(vals) > 8 else "")
        table.add_row(d.name, ", ".join(t.path + (f"[{t.layer}]" if t.layer is not None else "") for t in d.targets),
                      shown if d.grid() is not None else f"{d.low} .. {d.high}{' (log)' if d.log else ''}")
    console.print(table)
    console.print(f"objectives: {', '.join(s.objective_names)}; grid size: {s.grid_size() or 'continuous'}; "
                  "some point satisfies the constraints")


@dse_app.command("report")
def report_cmd(space: str = SPACE_ARG, storage: str = typer.Option(..., help="the study's Optuna storage URL"),
               study: str = typer.Option(None, help="study name (default: the space's name)"),
               seq: int = SEQ_OPT, out: Path = typer.Option(None, help="output directory")) -> None:
    """Write the outputs of a stored study (for example one run by many drivers) without running trials."""
    from ..dse import load_result, write_outputs
    from ..dse.study import check_storage

    try:
        _check_seq(seq)
        s = _space(space, seq)
        name = study or (s.file.name if not seq else f"{s.file.name}-{seq}")
        check_storage(storage)
        target = check_out_dir(_out(out, name))
        result = load_result(storage, name, s)
        paths = write_outputs(s, result, target)
    except (SparseAttnError, ValueError, KeyError) as err:
        fail(str(err))
        return
    _print_best(s, result)
    console.print("outputs: " + ", ".join(str(p) for p in paths.values()))


@dse_app.command("accuracy")
def accuracy_cmd(space: str = SPACE_ARG, seq: int = SEQ_OPT) -> None:
    """Fill the space's accuracy table and capture its Q/K/V (what a study does before its first trial)."""
    from ..dse import prepare

    try:
        _check_seq(seq)
        prepare(_space(space, seq), lambda m: console.print(m))
    except (SparseAttnError, ValueError) as err:
        fail(str(err))


@dse_app.command("spaces")
def spaces_cmd() -> None:
    """List the bundled search spaces."""
    from ..dse import read_space, space_names

    for name in space_names():
        console.print(f"[bold]{name}[/]: {read_space(name).description}")
