"""The equal-accuracy operating points of the bundled iso traces (``sanger-iso``, ``sofa-iso``), for PADE's iso
comparison (HPCA'26 Table III compares designs at equal accuracy).

The accuracy is the perplexity change of SmolLM2-135M (every layer sparse, Moby-Dick, 1024 tokens,
training-free); the target is the change at PADE's bundled trace setting, +2.11%. Each method's setting is read off
the two measurements (``iso_points.json``, copied from the benchmarks named there) whose changes bracket the target
most tightly, interpolated linearly in the loss and in the knob's own declared scale (log for Sanger's threshold and
SOFA's keep fraction: :class:`~sparseattn.methods.registry.Knob`), rounded to 3 significant digits -- the same knob
declarations :mod:`.search` calibrates with, so the iso traces and ``sparseattn calibrate`` share one home.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from ...core.errors import InvalidParameterError
from ...methods.registry import Knob, knobs_of

POINTS_FILE = Path(__file__).parent / "iso_points.json"
ISO_METHODS = {"sanger-iso": "sanger", "sofa-iso": "sofa"}


@dataclass(frozen=True)
class IsoSetting:
    """A method's setting at the reference's loss, and the two measurements it was interpolated between."""

    name: str
    method: str
    params: dict[str, Any]
    target_loss: float
    below: tuple[float, float]  # (knob value, loss) with loss <= target
    above: tuple[float, float]  # (knob value, loss) with loss > target

    @property
    def reason(self) -> str:
        knob = next(iter(self.params))
        return (f"equal accuracy with PADE ({self.target_loss:+.2%} ppl): {knob}={self.above[0]:g} gives "
                f"{self.above[1]:+.2%}, {knob}={self.below[0]:g} {self.below[1]:+.2%} (iso_points.json); interpolated "
                f"{knob}={self.params[knob]:g}")


def interpolate(knob: Knob, below: tuple[float, float], above: tuple[float, float], target: float) -> float:
    """The knob value where the loss reaches ``target`` between two measured (value, loss) points: linear in the
    loss, and linear or logarithmic in the value as the knob declares."""
    (xa, la), (xb, lb) = below, above
    if not la <= target <= lb or la == lb:
        raise InvalidParameterError(f"{knob.name}: target loss {target} is not bracketed by {below} and {above}")
    f = (target - la) / (lb - la)
    if knob.scale == "log":
        return math.exp(math.log(xa) + f * (math.log(xb) - math.log(xa)))
    return xa + f * (xb - xa)


@cache
def _data() -> dict[str, Any]:
    return json.loads(POINTS_FILE.read_text())


def iso_setting(name: str) -> IsoSetting:
    """The setting of iso trace ``name`` (module docstring)."""
    if name not in ISO_METHODS:
        raise InvalidParameterError(f"unknown iso trace {name!r}; known: {', '.join(ISO_METHODS)}")
    method, data = ISO_METHODS[name], _data()
    knob = knobs_of(method)[0]
    target = data["reference"]["ppl"] / data["dense_ppl"] - 1
    pts = [(r["params"][knob.name], r["ppl"] / data["dense_ppl"] - 1) for r in data["points"] if r["method"] == method]
    below = max((p for p in pts if p[1] <= target), key=lambda p: p[1])
    above = min((p for p in pts if p[1] > target), key=lambda p: p[1])
    value = float(f"{interpolate(knob, below, above, target):.3g}")
    return IsoSetting(name, method, {knob.name: value}, target, below, above)
