"""Method parameter models: the pydantic base every method's parameters derive from, and their validation with
errors that name the parameter, the value and the valid choices.

They live in ``core`` because two layers build them: :mod:`sparseattn.methods` (the registry, one model per method)
and :mod:`sparseattn.kernels` (``star_gpu``'s parameters, validated where the kernels are called directly).
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import InvalidParameterError


class MethodParams(BaseModel):
    """Base class of method parameter models: unknown parameters are errors, values are validated strictly (a
    bool is not a number, a float is not an int, a string is not a number: nothing is silently converted)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, strict=True)


P = TypeVar("P", bound=MethodParams)


def validate_params(model: type[P], params: dict[str, Any], method: str) -> P:
    """``params`` validated by ``model`` (the parameters of ``method``); an unknown name or a bad value raises
    :class:`~sparseattn.core.errors.InvalidParameterError` naming the parameter, the value and the valid ones."""
    valid = list(model.model_fields)
    unknown = [p for p in params if p not in model.model_fields]
    if unknown:
        raise InvalidParameterError(
            f"unknown parameter(s) {', '.join(map(repr, unknown))} for method {method!r}; "
            f"valid parameters: {', '.join(valid) if valid else '(none)'}"
        )
    try:
        return model(**params)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'parameters'}: {e['msg'].removeprefix('Value error, ')} "
            f"(got {e.get('input')!r})" for e in err.errors()
        )
        raise InvalidParameterError(f"invalid parameters for method {method!r}: {problems}") from None
