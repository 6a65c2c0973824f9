"""Errors raised by sparseattn.

Every bad input is reported as a :class:`ValueError` subclass whose message names the argument, what was
received and what is expected (DESIGN.md, "Contracts"). Catching ``ValueError`` is always enough.
"""

from __future__ import annotations


class SparseAttnError(ValueError):
    """Base class of all input and parameter errors raised by sparseattn."""


class InvalidInputError(SparseAttnError):
    """A tensor argument has the wrong rank, shape, dtype, device or contains NaN/Inf."""


class InvalidParameterError(SparseAttnError):
    """A method, parameter, text or model name is unknown, or a parameter value is out of range."""


class MissingAssetError(SparseAttnError):
    """An optional asset (the bundled model's package, say) is not installed; the message says how to get it."""


def describe_validation_error(err: object, where: str = "") -> str:
    """A pydantic ``ValidationError`` as one line per problem, ``key.path: message (got value)``, without
    pydantic's documentation URLs; ``where`` prefixes the message (a file name, an option group)."""
    lines = []
    for e in err.errors():  # type: ignore[attr-defined]
        loc = ".".join(str(x) for x in e["loc"]) or "<top>"
        got = "" if e["type"] == "missing" else f" (got {e.get('input')!r})"[:160]
        lines.append(f"{loc}: {e['msg'].removeprefix('Value error, ')}{got}")
    head = f"{where}: " if where else ""
    return head + ("; ".join(lines) if len(lines) < 3 else "\n  " + "\n  ".join(lines))
