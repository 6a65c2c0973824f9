"""Progress of the main job: which step of how many, which unit within the step (method i of n), and an estimate
of the time left.

The estimate weighs each unit by a nominal cost (seconds on an idle 2-core machine, measured on the default job:
accuracy about 250 s for 14 decoder units at 1024 tokens, the encoder about 60 s for 14 units of 8 x 256-token
passages, the rest about 30 s) and scales the nominal cost of the units left by how fast this machine has done the
units so far (``elapsed / nominal cost done``), so a loaded machine sees a longer, honest estimate.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

# Nominal seconds per unit on an idle 2-core machine (see the module docstring).
DECODER_UNIT_S_PER_1K_TOKENS = 17.0
ENCODER_UNIT_S_PER_2K_TOKENS = 4.3
HARDWARE_UNIT_S = 0.5
REPRODUCE_S = 10.0
SPATIAL_POINT_S = 0.8
DSE_TRIAL_S = 0.2
LOAD_MODEL_S = 3.0
REPORT_S = 5.0


@dataclass(frozen=True)
class StepPlan:
    """One step of the job: its name, what a unit is called, how many units are left to do and each one's nominal
    cost (seconds), plus a fixed nominal cost (loading a model, writing the report)."""

    name: str
    unit_name: str
    units: int
    unit_s: float
    fixed_s: float = 0.0

    @property
    def nominal_s(self) -> float:
        return self.units * self.unit_s + self.fixed_s


@dataclass(frozen=True)
class Status:
    """What the display shows after every tick."""

    step: int  # 1-based
    steps: int
    name: str
    unit: int  # 1-based; 0 while the step's fixed part runs
    units: int
    unit_name: str
    detail: str
    seconds_left: float | None  # None until the first unit of work finished

    def line(self) -> str:
        """The one-line form, for logs and terminals without live display."""
        where = f"step {self.step} of {self.steps} ({self.name})"
        if self.units and self.unit:
            where += f", {self.unit_name} {self.unit} of {self.units}"
        return f"{where}: {self.detail}" + (f"  [{eta_text(self.seconds_left)}]" if self.seconds_left is not None
                                            else "")


def eta_text(seconds: float | None) -> str:
    """``about 4 min left`` / ``about 40 s left``; rounded as coarsely as an estimate deserves."""
    if seconds is None or not math.isfinite(seconds):
        return "estimating the time left"
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"about {max(5, 5 * round(seconds / 5)):.0f} s left"
    if seconds < 3600:
        return f"about {round(seconds / 60):.0f} min left"
    return f"about {seconds / 3600:.1f} h left"


@dataclass
class Tracker:
    """Counts steps and units against a plan and calls ``show`` with a :class:`Status` on every tick.

    The job calls :meth:`begin` at each step and the tracker itself (``tick(detail)``) at each unit;
    ``tick(detail, unit=False)`` only changes the detail (a sub-phase of the same unit)."""

    plan: list[StepPlan]
    show: Callable[[Status], None] = lambda _: None
    clock: Callable[[], float] = time.monotonic
    _index: int = -1
    _unit: int = 0
    _done_s: float = 0.0  # nominal cost of the work finished
    _started: float | None = None
    _names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._names = [p.name for p in self.plan]

    def begin(self, name: str, detail: str = "") -> None:
        """Start step ``name`` (a step not in the plan, or already passed, is ignored)."""
        if name not in self._names[self._index + 1:]:
            return
        self._finish_unit()
        self._index = self._names.index(name, self._index + 1)
        self._unit = 0
        if self._started is None:
            self._started = self.clock()
        self._emit(detail or self.plan[self._index].name)

    def __call__(self, detail: str, unit: bool = True) -> None:
        if self._index < 0:
            self._emit(detail)
            return
        if unit:
            self._finish_unit()
            self._unit = min(self._unit + 1, max(1, self.plan[self._index].units))
        self._emit(detail)

    def _finish_unit(self) -> None:
        """The unit running is done (unit 0: the step's fixed part, e.g. loading its model)."""
        if self._index >= 0:
            step = self.plan[self._index]
            self._done_s += step.unit_s if self._unit > 0 else step.fixed_s

    def seconds_left(self) -> float | None:
        """Nominal cost of what is left, scaled by this machine's pace so far (None before any work finished)."""
        if self._started is None or self._done_s <= 0:
            return None
        left = sum(p.nominal_s for p in self.plan[self._index + 1:])
        if self._index >= 0:
            step = self.plan[self._index]
            left += (step.units - self._unit + 1) * step.unit_s if self._unit else step.nominal_s
        pace = (self.clock() - self._started) / self._done_s
        return left * pace

    def _emit(self, detail: str) -> None:
        i = max(self._index, 0)
        step = self.plan[i] if self.plan else StepPlan("", "", 0, 0.0)
        self.show(Status(step=i + 1, steps=len(self.plan), name=step.name, unit=self._unit, units=step.units,
                         unit_name=step.unit_name, detail=detail, seconds_left=self.seconds_left()))
