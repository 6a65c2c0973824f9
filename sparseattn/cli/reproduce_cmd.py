"""``sparseattn reproduce``: the papers' headline claims, paper vs ours."""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path

import typer
from rich.table import Table

from ..core.errors import SparseAttnError
from ..core.files import check_out_dir
from ._app import app, console, fail


@app.command("reproduce")
def reproduce_cmd(
    paper: str = typer.Option("all", help="sofa, star, pade or all"),
    out: Path = typer.Option(None, help="output directory (default runs/reproduce-<timestamp>)"),
    write_docs: bool = typer.Option(False, "--write-docs/--no-write-docs",
                                    help="regenerate docs/reproduce.md and the README's claims table from this run's "
                                    "reproduce.json (and copy its figures to docs/)"),
) -> None:
    """Every headline claim of the SOFA, STAR and PADE abstracts: paper vs ours, ratio, assumptions, levers."""
    from ..report.reproduce import PAPERS, claim_rows, reproduce

    papers = list(PAPERS) if paper == "all" else [paper]
    out = out or Path("runs") / datetime.now().strftime("reproduce-%Y%m%d-%H%M%S")
    start = time.perf_counter()
    try:
        check_out_dir(out)
        with console.status("simulating ...") as status:
            claims = reproduce(papers, out, progress=lambda p: status.update(f"simulating {p.upper()} claims ..."))
    except (SparseAttnError, ValueError) as err:
        fail(str(err))
        return
    console.print(claims_table(claim_rows(claims)))
    checks = json.loads((out / "reproduce.json").read_text())["validation"]
    console.print(f"paper inside our bracket: {sum(bool(c.in_bracket) for c in claims)} of {len(claims)}; point "
                  f"within ±25%: {sum(c.within for c in claims)} of {len(claims)}; the simulator against the designs' "
                  f"own figures: {sum(c['within_25pct'] for c in checks)} of {len(checks)}")
    if write_docs:
        _write_docs(out)
    console.print(f"wrote {out}/reproduce.json and reproduce.md (every choice, swing and derivation) and figures in "
                  f"{time.perf_counter() - start:.1f} s")


def claims_table(rows) -> Table:
    """The compact claims table (fits 80 columns): claim, paper, our point [low, high], the two verdicts."""
    table = Table(title="headline claims: paper vs ours, point \\[bracket]",
                  caption="in: paper value inside our bracket; ±25%: our point within 25% of it")
    for col, just in (("claim", "left"), ("paper", "right"), ("ours \\[low, high]", "right"), ("in", "center"),
                      ("±25%", "center")):
        table.add_column(col, justify=just, no_wrap=col != "claim")
    for r in rows:
        table.add_row(r.id, f"{r.paper_value:g}", f"{r.point:.3g} \\[{r.low:.3g}, {r.high:.3g}]",
                      "[green]yes[/]" if r.in_bracket else "[red]no[/]", "[green]yes[/]" if r.within else "[red]no[/]")
    return table


def _write_docs(out: Path) -> None:
    import shutil

    from ..report.claims_docs import DOCS_MD, write_docs

    for png in out.glob("*.png"):
        shutil.copy(png, DOCS_MD.parent / png.name)
    for path in write_docs(out / "reproduce.json"):
        console.print(f"regenerated {path}")
