"""``sparseattn reproduce``: the papers' headline claims, paper vs ours."""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path

import typer
from rich.table import Table

from ..core.errors import SparseAttnError
from ._app import app, console, fail


@app.command("reproduce")
def reproduce_cmd(
    paper: str = typer.Option("all", help="sofa, star, pade or all"),
    out: Path = typer.Option(None, help="output directory (default runs/reproduce-<timestamp>)"),
) -> None:
    """Every headline claim of the SOFA, STAR and PADE abstracts: paper vs ours, ratio, assumptions, levers."""
    from ..report.reproduce import PAPERS, claims_markdown, reproduce

    papers = list(PAPERS) if paper == "all" else [paper]
    out = out or Path("runs") / datetime.now().strftime("reproduce-%Y%m%d-%H%M%S")
    start = time.perf_counter()
    try:
        with console.status("simulating ...") as status:
            claims = reproduce(papers, out, progress=lambda p: status.update(f"simulating {p.upper()} claims ..."))
    except (SparseAttnError, ValueError) as err:
        fail(str(err))
        return
    table = Table(title="headline claims: paper vs ours")
    for col in ("paper", "claim", "paper value", "ours", "ours / paper", "within 25%"):
        table.add_column(col)
    for c in claims:
        table.add_row(c.paper.upper(), c.text, f"{c.paper_value:g}x", f"{c.ours:.3g}x", f"{c.ratio:.3g}",
                      "[green]yes[/]" if c.within else "[red]no[/]")
    console.print(table)
    console.print(claims_markdown(claims), markup=False, highlight=False)
    checks = json.loads((out / "reproduce.json").read_text())["validation"]
    console.print(f"within ±25%: {sum(c.within for c in claims)} of {len(claims)} claims; the simulator against the "
                  f"designs' own published figures: {sum(c['within_25pct'] for c in checks)} of {len(checks)} "
                  "(table in reproduce.md)")
    console.print(f"wrote {out}/reproduce.json, reproduce.md, claims.png, energy_breakdown.png "
                  f"in {time.perf_counter() - start:.1f} s")
