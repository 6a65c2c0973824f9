"""The method registry: every method is a :class:`~sparseattn.core.driver.Method` (predict, select, attend,
count) plus a pydantic parameter model.

A method module registers its class with :func:`register`::

    class TopKParams(MethodParams):
        ratio: float = Field(0.2, gt=0, le=1, description="...")

    @register("topk", TopKParams, "oracle per-row top-k by exact logits")
    class TopK(Method):
        def predict(self, ctx, block, tally): ...

Parameter models forbid unknown fields; :func:`parse_params` turns pydantic's errors into
:class:`~sparseattn.core.errors.InvalidParameterError` messages that list the valid parameters
(:func:`~sparseattn.core.params.validate_params`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from ..core.call import AttentionCall
from ..core.driver import Method
from ..core.errors import InvalidParameterError
from ..core.params import MethodParams, validate_params


@dataclass(frozen=True)
class Knob:
    """A parameter that sets how much of the attention a method keeps (its *density knob*), for calibration to a
    loss budget (:mod:`sparseattn.eval.calibrate`).

    ``denser`` says which way is monotone: ``"up"`` when a larger value keeps more pairs (top-k's ratio), ``"down"``
    when it keeps fewer (Sanger's threshold). ``scale`` is how the search moves between ``low`` and ``high``
    (``"log"`` for knobs spanning decades). ``grid`` is only for a method's *secondary* knobs: the values the
    calibration tries for it, each with the primary knob searched (a two-knob method, PADE's radius x alpha);
    empty for the primary knob. ``source`` says where the range comes from.
    """

    name: str
    low: float
    high: float
    denser: Literal["up", "down"]
    scale: Literal["log", "linear"] = "linear"
    grid: tuple[float, ...] = ()
    source: str = ""

    def __post_init__(self) -> None:
        if not self.low < self.high or (self.scale == "log" and self.low <= 0):
            raise ValueError(f"knob {self.name!r}: need 0 < low < high for a log knob and low < high, got "
                             f"[{self.low}, {self.high}] ({self.scale})")
        if any(not self.low <= g <= self.high for g in self.grid):
            raise ValueError(f"knob {self.name!r}: grid {self.grid} leaves [{self.low}, {self.high}]")


@dataclass(frozen=True)
class MethodSpec:
    name: str
    params: type[MethodParams]
    factory: Callable[[Any], Method]  # parameters -> the method's steps
    summary: str
    knobs: tuple[Knob, ...] = ()  # the first is searched; the others (with a grid) are tried at each grid value


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
    knobs: tuple[Knob, ...] = ()


_REGISTRY: dict[str, MethodSpec] = {}

__all__ = ["AttentionCall", "Knob", "Method", "MethodParams", "MethodSpec", "get_method", "knobs_of", "method_names",
           "parse_params", "register"]


def register(name: str, params: type[MethodParams], summary: str,
             knobs: tuple[Knob, ...] = ()) -> Callable[[type[Method]], type[Method]]:
    """Class decorator that registers a :class:`Method` subclass under ``name`` (its ``name`` is set to it), with
    its density ``knobs`` (:class:`Knob`; the first is the one searched, each must be a parameter of ``params``)."""
    for i, knob in enumerate(knobs):
        if knob.name not in params.model_fields:
            raise ValueError(f"method {name!r}: knob {knob.name!r} is not one of its parameters")
        if bool(knob.grid) != (i > 0):
            raise ValueError(f"method {name!r}: the first knob is searched (no grid), the others need a grid")

    def wrap(cls: type[Method]) -> type[Method]:
        if name in _REGISTRY:
            raise ValueError(f"method {name!r} is already registered")
        cls.name = name
        _REGISTRY[name] = MethodSpec(name=name, params=params, factory=cls, summary=summary, knobs=tuple(knobs))
        return cls

    return wrap


def knobs_of(name: str) -> tuple[Knob, ...]:
    """The density knobs of method ``name``; a method without one (dense) is an error saying so."""
    spec = get_method(name)
    if not spec.knobs:
        with_knobs = [m for m in method_names() if _REGISTRY[m].knobs]
        raise InvalidParameterError(f"method {name!r} has no density knob to calibrate; methods with one: "
                                    f"{', '.join(with_knobs)}")
    return spec.knobs


def get_method(name: str) -> MethodSpec:
    if not isinstance(name, str) or name not in _REGISTRY:
        raise InvalidParameterError(f"unknown method {name!r}; available methods: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def method_names() -> list[str]:
    return sorted(_REGISTRY)


def parse_params(method: str, params: dict[str, Any]) -> MethodParams:
    """Validate ``params`` for ``method``; errors name the parameter, the value and the valid choices."""
    return validate_params(get_method(method).params, params, method)


def _constraints(field: Any) -> str:
    parts = []
    for m in field.metadata:
        for attr, sym in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
            value = getattr(m, attr, None)
            if value is not None:
                parts.append(f"{sym} {value}")
    return ", ".join(parts)


def _type_name(annotation: Any) -> str:
    """``int``, ``float | None``, ``'tensor' | 'head'`` (the choices of a Literal), ``float | list[float]``."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return " | ".join(repr(a) for a in args)
    if origin is Annotated:
        return _type_name(args[0])
    if origin in (Union, UnionType):
        return " | ".join(_type_name(a) for a in args)
    if origin is list:
        return f"list[{_type_name(args[0])}]"
    if annotation is type(None):
        return "None"
    return getattr(annotation, "__name__", str(annotation))


def describe(spec: MethodSpec) -> MethodInfo:
    infos = []
    for pname, field in spec.params.model_fields.items():
        infos.append(
            ParamInfo(
                name=pname,
                type=_type_name(field.annotation),
                default=field.default,
                constraints=_constraints(field),
                description=field.description or "",
            )
        )
    return MethodInfo(name=spec.name, summary=spec.summary, parameters=tuple(infos), knobs=spec.knobs)
