"""``sparseattn sweep``: dense vs the oracles over a sweep of densities (the frontier the methods are judged by)."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..core.errors import SparseAttnError, describe_validation_error
from ._app import app, console, fail
from .options import flag


@app.command("sweep")
def sweep_cmd(
    out: Path = typer.Option(None, help="output directory (default runs/<timestamp>); an existing one resumes"),
    texts: str = typer.Option("moby-dick,sotu", help="comma-separated bundled texts"),
    tokens: int = typer.Option(1024, help="window length in tokens, BOS included"),
    densities: str = typer.Option("0.5,0.3,0.2,0.1,0.05", help="comma-separated target densities"),
    methods: str = typer.Option("topk,threshold,block_topk", help="comma-separated oracles"),
    restart: bool = flag(False, "restart", help="move an existing results.json in --out aside and start afresh"),
) -> None:
    """Dense vs the oracles (top-k, threshold, block top-k) over a sweep of densities: table, results.json, plot."""
    from pydantic import ValidationError

    from ..core.files import check_out_dir, set_aside
    from ..core.invariants import check_rows
    from ..eval.sweep import SweepConfig, load_rows, with_relative_increase
    from ..models.loader import load_model
    from ..report import perplexity_rows_markdown, plot_perplexity_vs_density
    from ..report.tables import coinciding_targets

    try:
        config = SweepConfig(
            texts=[t.strip() for t in texts.split(",") if t.strip()],
            n_tokens=tokens,
            densities=[float(d) for d in densities.split(",") if d.strip()],
            methods=[m.strip() for m in methods.split(",") if m.strip()],
        )
    except ValidationError as err:
        fail(describe_validation_error(err, "invalid run options"))
        return
    except ValueError as err:
        fail(f"invalid run options: {err}")
        return
    out = out or Path("runs") / datetime.now().strftime("%Y%m%d-%H%M%S")
    start = time.perf_counter()
    try:
        if restart and (out / "results.json").exists():
            console.print(f"moved {out / 'results.json'} aside to {set_aside(out / 'results.json')}")
        check_out_dir(out)
        load_rows(out, config)  # a corrupt or foreign results file is refused before the model loads
        with console.status(f"loading {config.model} ..."):
            lm = load_model(config.model)
        rows = _run_with_progress(config, out, lm)
        check_rows(rows, "sweep")  # finite, densities in [0, 1], before the table and plot are written
    except SparseAttnError as err:
        fail(str(err))
        return
    rows = with_relative_increase(rows)
    table_md = perplexity_rows_markdown(rows)
    same = coinciding_targets(rows)
    (out / "results.md").write_text(table_md + "\n" + "".join(f"\n- {s}" for s in same) + ("\n" if same else ""))
    png = plot_perplexity_vs_density(
        rows, out / "perplexity_vs_density.png", f"{config.model}, {config.n_tokens} tokens"
    )
    _print_rows(rows, config)
    for sentence in same:
        console.print(f"note: {sentence}", soft_wrap=True, highlight=False)
    console.print(
        f"wrote {out / 'results.json'}, {out / 'results.md'} and {png} in {time.perf_counter() - start:.0f} s"
    )


def _run_with_progress(config: Any, out: Path, lm: Any) -> list[dict[str, Any]]:
    """The sweep's rows, with a progress bar over the planned (text, method, density) points."""
    from ..eval.sweep import planned, run_sweep

    total = len(planned(config))
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as progress:
        task = progress.add_task("sweep", total=total)

        def on_row(row: dict[str, Any], done: int, total: int) -> None:
            progress.update(task, completed=done, description=f"{row['text']} {row['method']} ppl {row['ppl']:.2f}")

        rows = run_sweep(config, out, lm, on_row)
        progress.update(task, completed=total)
    return rows


def _print_rows(rows: list[dict[str, Any]], config: Any) -> None:
    """The sweep's rows as a terminal table."""
    table = Table(title=f"{config.model}: perplexity vs density, {config.n_tokens} tokens, every layer sparse")
    for col in ("text", "method", "target", "parameters", "perplexity", "vs dense", "density"):
        table.add_column(col)
    for r in rows:
        rel = "-" if r["method"] == "dense" else f"{100 * r['rel_increase']:+.2f}%"
        target = "-" if r["target_density"] is None else f"{r['target_density']:.2f}"
        ps = ", ".join(f"{k}={v}" for k, v in r["params"].items()) or "-"
        table.add_row(r["text"], r["method"], target, ps, f"{r['ppl']:.2f}", rel, f"{r['density']:.3f}")
    console.print(table)
