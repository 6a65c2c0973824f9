"""Search dimensions: a space file's parameters expanded (one per layer for ``per_layer``) into what Optuna samples.

A :class:`Dim` knows its Optuna distribution, its grid (for the grid sampler and for exhaustive checks) and how a
sampled value maps back to the value written to its targets:

* numeric ``values`` are sampled as an **ordered index** (``IntDistribution(0, n - 1)``), so TPE and the GP see
  that 32 lies between 16 and 64; other choices (strings, booleans) are categorical;
* ranges are ``IntDistribution`` when ``low``, ``high`` (and ``step``) are integers, else ``FloatDistribution``
  (``step`` and ``log`` as given).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from .space import Parameter

GRID_FLOAT_POINTS = 5  # points per float range without a step, when a check enumerates the space


@dataclass(frozen=True)
class Target:
    """Where a value goes: an architecture/mapping path, or a method parameter (optionally one layer's entry)."""

    path: str
    layer: int | None = None

    @property
    def is_method(self) -> bool:
        return self.path.startswith("method.")

    @property
    def param(self) -> str:
        """The method parameter's name (``method.Tc`` -> ``Tc``)."""
        return self.path.removeprefix("method.")


def _numeric(values: tuple[Any, ...]) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def _primitive(values: tuple[Any, ...]) -> bool:
    return all(v is None or isinstance(v, bool | int | float | str) for v in values)


@dataclass(frozen=True)
class Dim:
    """One sampled quantity (see the module docstring)."""

    name: str
    targets: tuple[Target, ...]
    choices: tuple[Any, ...] | None = None
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False
    is_int: bool = False

    @property
    def ordinal(self) -> bool:
        return self.choices is not None and _numeric(self.choices)

    def distribution(self) -> BaseDistribution:
        if self.choices is not None:
            if self.ordinal:
                return IntDistribution(0, len(self.choices) - 1)
            return CategoricalDistribution(self.choices if _primitive(self.choices) else list(range(len(self.choices))))
        if self.is_int:
            return IntDistribution(int(self.low), int(self.high), step=int(self.step or 1), log=self.log)
        return FloatDistribution(float(self.low), float(self.high), step=self.step, log=self.log)

    def decode(self, raw: Any) -> Any:
        """The value written to the targets for the sampled ``raw`` value."""
        if self.choices is not None and (self.ordinal or not _primitive(self.choices)):
            return self.choices[int(raw)]
        if self.is_int:
            return int(raw)
        return round(float(raw), 12) if self.choices is None else raw

    def encode(self, value: Any) -> Any:
        """The sampled (raw) value of a decoded ``value`` (for enqueuing a known point)."""
        if self.choices is not None and (self.ordinal or not _primitive(self.choices)):
            return next(i for i, c in enumerate(self.choices) if c == value)
        return value

    def grid(self, float_points: int | None = None) -> list[Any] | None:
        """Every raw value, or ``None`` for a continuous range (``float_points``: sample it evenly instead)."""
        dist = self.distribution()
        if isinstance(dist, CategoricalDistribution):
            return list(dist.choices)
        if isinstance(dist, IntDistribution) and not dist.log:
            return list(range(dist.low, dist.high + 1, dist.step))
        if isinstance(dist, IntDistribution):
            return list(range(dist.low, dist.high + 1)) if dist.high - dist.low < 4096 else None
        if dist.step is not None:
            n = round((dist.high - dist.low) / dist.step)
            return [round(dist.low + i * dist.step, 12) for i in range(n + 1)]
        if float_points:
            lo, hi = (math.log(dist.low), math.log(dist.high)) if dist.log else (dist.low, dist.high)
            pts = [lo + (hi - lo) * i / (float_points - 1) for i in range(float_points)]
            return [math.exp(p) for p in pts] if dist.log else pts
        return None

    def values(self, float_points: int | None = GRID_FLOAT_POINTS) -> list[Any]:
        """Decoded values of the grid (a float range sampled at ``float_points``)."""
        return [self.decode(r) for r in self.grid(float_points) or []]

    def ends(self) -> list[Any]:
        """The decoded extremes (first and last choice, or low and high)."""
        raws = self.grid(2) or [self.distribution().low, self.distribution().high]
        return [self.decode(raws[0]), self.decode(raws[-1])]


def expand(p: Parameter) -> list[Dim]:
    """The dims of one parameter: one, or one per layer of ``per_layer``."""
    layers: list[int | None] = list(p.per_layer) if p.per_layer is not None else [None]
    dims = []
    for layer in layers:
        name = p.label if layer is None else f"{p.label}.{layer}"
        targets = tuple(Target(t, layer) for t in p.targets)
        choices = tuple(p.values) if p.values is not None else None
        dims.append(Dim(name=name, targets=targets, choices=choices, low=p.low, high=p.high, step=p.step,
                        log=p.log, is_int=p.is_int))
    return dims
