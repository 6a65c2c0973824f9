"""The claims file (``hw/published/claims.yaml``): paper values, their sources, each claim's aggregation rule, the
one accounting per design, and every unstated or unmeasured choice with its range, source and point."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..hw.config import ConfigError, StrictModel, read_yaml, validated

CLAIMS_FILE = Path(__file__).resolve().parents[1] / "hw" / "published" / "claims.yaml"
Value = str | float


class _Data(BaseModel):
    """A frozen model refusing unknown keys (values here may be numbers or names, so not :class:`StrictModel`)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Accounting(_Data):
    """How a design is simulated in every claim: dotted-path overrides of its bundled architecture, and why."""

    overrides: dict[str, Value]
    why: str


class Choice(_Data):
    """One choice a claim depends on that its paper does not state or we have not measured."""

    what: str
    values: list[Value] = Field(min_length=2)
    point: Value
    source: str = Field(min_length=3)
    why: str = Field(min_length=3)
    labels: dict[Value, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _point_among_values(self) -> Choice:
        if self.point not in self.values:
            raise ValueError(f"point {self.point!r} is not one of the values {self.values}")
        return self

    def label(self, value: Value) -> str:
        if value in self.labels:
            return self.labels[value]
        return f"{value:g}" if isinstance(value, float) else str(value)


class ClaimSpec(_Data):
    """One headline claim: the paper's value and source, how ours is evaluated and aggregated, its choices."""

    id: str
    paper: Literal["sofa", "star", "pade"]
    text: str
    value: float = Field(gt=0)
    evaluate: Literal["a100", "table2", "h100", "iso", "spatial"]
    metric: Literal["speed", "energy", "area"]
    aggregate: Literal["mean", "geomean", "max"]
    source: str
    choices: list[str] = Field(min_length=1)
    corners: list[tuple[str, str]] = Field(default_factory=list)
    baseline: str | None = None
    before: float | None = Field(default=None, gt=0, description="our point before claims were brackets")


class ClaimsFile(StrictModel):
    accounting: dict[str, Accounting]
    choices: dict[str, Choice]
    claims: list[ClaimSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _choices_exist(self) -> ClaimsFile:
        for c in self.claims:
            named = set(c.choices) | {n for pair in c.corners for n in pair}
            unknown = sorted(named - set(self.choices))
            if unknown:
                raise ValueError(f"claim {c.id!r} names unknown choice(s) {unknown}")
        ids = [c.id for c in self.claims]
        if len(set(ids)) != len(ids):
            raise ValueError("claim ids repeat")
        return self

    def claim(self, cid: str) -> ClaimSpec:
        for c in self.claims:
            if c.id == cid:
                return c
        raise ConfigError(f"no claim {cid!r}; claims: {', '.join(c.id for c in self.claims)}")

    def overrides(self, design: str) -> tuple[tuple[str, Value], ...]:
        """The accounting overrides of ``design`` (none when it has no entry)."""
        acc = self.accounting.get(design)
        return tuple(sorted(acc.overrides.items())) if acc else ()

    def points(self) -> dict[str, Value]:
        return {name: ch.point for name, ch in self.choices.items()}


@lru_cache(maxsize=4)
def load_claims(path: str | None = None) -> ClaimsFile:
    """The bundled claims file (or one of the same form)."""
    file = Path(path) if path else CLAIMS_FILE
    return validated(ClaimsFile, read_yaml(file), str(file))
