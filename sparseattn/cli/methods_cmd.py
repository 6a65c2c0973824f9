"""``sparseattn methods``: the registered methods and their parameters."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table

from ..methods.entry import list_methods
from ._app import app, console


@app.command("methods")
def methods_cmd() -> None:
    """List the registered methods and their parameters."""
    for name, info in list_methods().items():
        console.print(f"[bold]{name}[/]: {escape(info.summary)}", highlight=False)
        table = Table(show_header=False, box=None, padding=(0, 1), expand=False)
        table.add_column("parameter", no_wrap=True, style="cyan")
        table.add_column("type and default", no_wrap=True)
        table.add_column("meaning", overflow="fold", ratio=1)
        for p in info.parameters:
            rng = f", {p.constraints}" if p.constraints else ""
            table.add_row(f"  --{p.name.replace('_', '-')}", escape(f"{p.type} = {p.default!r}{rng}"),
                          escape(p.description))
        if info.parameters:
            console.print(table)
        console.print()
