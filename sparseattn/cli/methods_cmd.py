"""``sparseattn methods``: the registered methods and their parameters."""

from __future__ import annotations

from rich.table import Table

from ..api import list_methods
from ._app import app, console


@app.command("methods")
def methods_cmd() -> None:
    """List the registered methods and their parameters."""
    table = Table(title="sparseattn methods")
    for col in ("method", "parameter", "type", "default", "range", "meaning"):
        table.add_column(col)
    for name, info in list_methods().items():
        table.add_row(f"[bold]{name}[/]", "", "", "", "", info.summary)
        for p in info.parameters:
            table.add_row("", p.name, p.type, repr(p.default), p.constraints, p.description)
    console.print(table)
