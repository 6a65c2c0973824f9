"""The Typer application, its console and the shared error exit (every command module registers on ``app``)."""

from __future__ import annotations

import typer
from rich.console import Console

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Dynamic sparse attention: methods, accuracy, simulation."
)
console = Console()


def fail(message: str) -> None:
    """Print ``message`` as an error and exit with code 2 (bad input)."""
    console.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    raise typer.Exit(code=2)
