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
