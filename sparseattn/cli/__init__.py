"""Command line: ``sparseattn methods | eval | calibrate | finetune | run | sweep | simulate | reproduce``.

One module per command, each registering itself on the shared Typer ``app`` (``_app.py``).
"""

from __future__ import annotations

from . import calibrate_cmd, eval_cmd, finetune_cmd, methods_cmd, reproduce_cmd, run_cmd, simulate_cmd, sweep_cmd  # noqa: F401  (registration)
from ._app import app
from .dse_cmd import dse_app  # noqa: F401  (registration)
from .options import parse_method_options
from .spatial_cmd import spatial_cmd  # noqa: F401  (registration)

__all__ = ["app", "main", "parse_method_options"]


def main() -> None:  # pragma: no cover - console entry point
    app()
