"""Parsing of method parameters given as ``--name value`` options."""

from __future__ import annotations

import json
from typing import Any

from ..core.errors import SparseAttnError


def coerce(value: str) -> Any:
    if value.startswith("["):  # per-layer lists, e.g. --Tc "[2, 4, 8]"
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            raise SparseAttnError(f"cannot parse the list {value!r}; write it as JSON, e.g. [2, 4, 8]") from None
    lowered = value.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value


def parse_method_options(args: list[str]) -> dict[str, Any]:
    """``['--ratio', '0.2', '--block-size=64']`` -> ``{'ratio': 0.2, 'block_size': 64}``."""
    params: dict[str, Any] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--") or arg == "--":
            raise SparseAttnError(f"unexpected argument {arg!r}; method parameters are given as --name value")
        name, eq, value = arg[2:].partition("=")
        if not eq:
            if i + 1 >= len(args) or args[i + 1].startswith("--"):
                raise SparseAttnError(f"parameter --{name} needs a value")
            value = args[i + 1]
            i += 1
        params[name.replace("-", "_")] = coerce(value)
        i += 1
    return params


def parse_layers(layers: str | None) -> list[int] | None:
    if layers is None:
        return None
    try:
        return [int(x) for x in layers.split(",") if x.strip()]
    except ValueError:
        raise SparseAttnError(f"--layers must be comma-separated integers, got {layers!r}") from None




def flag(default: bool, name: str, help: str) -> Any:
    """A boolean option with both forms, ``--name`` / ``--no-name``, shown without a value placeholder (it takes
    none: ``--iso``, not ``--iso true``)."""
    import typer

    return typer.Option(default, f"--{name}/--no-{name}", help=help, metavar="")
