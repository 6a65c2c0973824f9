"""The method registry: every method is a function of validated tensors plus a pydantic parameter model.

A method module registers itself with :func:`register`::

    class TopKParams(MethodParams):
        ratio: float = Field(0.2, gt=0, le=1, description="...")

    @register("topk", TopKParams, "oracle per-row top-k by exact logits")
    def topk(call: AttentionCall, p: TopKParams) -> SparseResult: ...

Parameter models forbid unknown fields; :func:`parse_params` turns pydantic's errors into
:class:`~sparseattn.core.errors.InvalidParameterError` messages that list the valid parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, ValidationError

from ..core.errors import InvalidParameterError
from ..core.result import SparseResult
from ..core.shape import Shape
from ..core.side import SideInputs


class MethodParams(BaseModel):
    """Base class of method parameter models: unknown parameters are errors, values are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


@dataclass(frozen=True)
class AttentionCall:
    """Validated inputs of one call: tensors, their shape, the logit scale, and optionally the layer index
    (for per-layer parameters), side inputs (for methods that predict from the layer input) and a mutable
    per-model ``state`` dict (for methods that carry decisions from layer to layer, like SpAtten)."""

    q: torch.Tensor
    k: torch.Tensor
    v: torch.Tensor
    shape: Shape
    scale: float
    layer: int | None = None
    side: SideInputs | None = None
    state: dict | None = None


MethodFn = Callable[[AttentionCall, Any], SparseResult]


@dataclass(frozen=True)
class MethodSpec:
    name: str
    params: type[MethodParams]
    fn: MethodFn
    summary: str


@dataclass(frozen=True)
class ParamInfo:
    """One parameter of a method, for listings (``sparseattn methods``)."""

    name: str
    type: str
    default: Any
    constraints: str
    description: str


@dataclass(frozen=True)
class MethodInfo:
    name: str
    summary: str
    parameters: tuple[ParamInfo, ...]


_REGISTRY: dict[str, MethodSpec] = {}


def register(name: str, params: type[MethodParams], summary: str) -> Callable[[MethodFn], MethodFn]:
    """Decorator that registers a method function under ``name``."""

    def wrap(fn: MethodFn) -> MethodFn:
        if name in _REGISTRY:
            raise ValueError(f"method {name!r} is already registered")
        _REGISTRY[name] = MethodSpec(name=name, params=params, fn=fn, summary=summary)
        return fn

    return wrap


def get_method(name: str) -> MethodSpec:
    if not isinstance(name, str) or name not in _REGISTRY:
        raise InvalidParameterError(f"unknown method {name!r}; available methods: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def method_names() -> list[str]:
    return sorted(_REGISTRY)


def parse_params(method: str, params: dict[str, Any]) -> MethodParams:
    """Validate ``params`` for ``method``; errors name the parameter, the value and the valid choices."""
    spec = get_method(method)
    valid = list(spec.params.model_fields)
    unknown = [p for p in params if p not in spec.params.model_fields]
    if unknown:
        raise InvalidParameterError(
            f"unknown parameter(s) {', '.join(map(repr, unknown))} for method {method!r}; "
            f"valid parameters: {', '.join(valid) if valid else '(none)'}"
        )
    try:
        return spec.params(**params)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'parameters'}: {e['msg']} (got {e.get('input')!r})" for e in err.errors()
        )
        raise InvalidParameterError(f"invalid parameters for method {method!r}: {problems}") from None


def _constraints(field: Any) -> str:
    parts = []
    for m in field.metadata:
        for attr, sym in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
            value = getattr(m, attr, None)
            if value is not None:
                parts.append(f"{sym} {value}")
    return ", ".join(parts)


def describe(spec: MethodSpec) -> MethodInfo:
    infos = []
    for pname, field in spec.params.model_fields.items():
        annotation = getattr(field.annotation, "__name__", None) or str(field.annotation)
        infos.append(
            ParamInfo(
                name=pname,
                type=annotation.replace("typing.", ""),
                default=field.default,
                constraints=_constraints(field),
                description=field.description or "",
            )
        )
    return MethodInfo(name=spec.name, summary=spec.summary, parameters=tuple(infos))
