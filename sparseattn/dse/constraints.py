"""Constraints checked before a trial simulates anything: the mapping's tiles fit the buffers (always, for a kind
with buffers, by its ``check_fit`` capability), and the optional area and SRAM budgets of the space.

What each constraint measures comes from the architecture kind's capabilities
(:class:`~sparseattn.hw.registry.Capabilities`); a budget on a kind that cannot measure it (an SRAM budget on a
GPU, an area budget on a kind without an area model) is an error naming the budget, never a skipped constraint.

Each constraint gives a value in Optuna's convention (``<= 0`` feasible, ``> 0`` violated, in units of the
budget: 0.1 is 10 % over), which the study hands to the sampler with ``Trial.set_constraint`` so TPE and the GP
learn where the feasible region is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..core.shape import Shape
from ..hw.config import ConfigError
from ..hw.registry import capabilities, require
from ..hw.technology import load_technology
from .space import Constraints

AREA_BUDGET = "the area budget (constraints.area_mm2_max)"
SRAM_BUDGET = "the SRAM budget (constraints.sram_kb_max)"


@dataclass
class Feasibility:
    """Constraint values (``<= 0`` satisfied) and, for each violated one, the reason."""

    values: dict[str, float] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)

    @property
    def feasible(self) -> bool:
        return all(v <= 0 for v in self.values.values())

    @property
    def violation(self) -> float:
        """Total violation (0 when feasible)."""
        return sum(max(v, 0.0) for v in self.values.values())


def arch_area_mm2(arch: Any) -> float:
    """Area of an architecture without simulating it (a GPU: its die); an error for a kind without an area model."""
    return float(require(arch, "area_mm2", AREA_BUDGET)(arch, load_technology()))


def check_budgets(arch: Any, limits: Constraints) -> None:
    """Raise :class:`~sparseattn.hw.registry.MissingCapabilityError` when ``limits`` sets a budget that ``arch``'s
    kind cannot measure."""
    if limits.area_mm2_max is not None:
        require(arch, "area_mm2", AREA_BUDGET)
    if limits.sram_kb_max is not None:
        require(arch, "sram_kb", SRAM_BUDGET)


def _buffers(arch: Any, shape: Shape) -> tuple[float, str | None]:
    fit = capabilities(arch).check_fit
    if fit is None:  # the kind has no buffers to fit (a GPU)
        return 0.0, None
    try:
        fit(arch, shape, None)
    except ConfigError as err:
        return 1.0, str(err)
    return 0.0, None


def check(arch: Any, shape: Shape, limits: Constraints) -> Feasibility:
    """Every constraint of ``arch`` under its mapping at ``shape`` (see the module docstring)."""
    check_budgets(arch, limits)
    out = Feasibility()
    value, reason = _buffers(arch, shape)
    out.values["buffers"] = value
    if reason:
        out.reasons.append(reason)
    if limits.area_mm2_max is not None:
        area = arch_area_mm2(arch)
        out.values["area"] = (area - limits.area_mm2_max) / limits.area_mm2_max
        if area > limits.area_mm2_max:
            out.reasons.append(f"area {area:.3f} mm2 exceeds the budget of {limits.area_mm2_max} mm2")
    if limits.sram_kb_max is not None:
        kb = float(require(arch, "sram_kb", SRAM_BUDGET)(arch))
        out.values["sram"] = (kb - limits.sram_kb_max) / limits.sram_kb_max
        if kb > limits.sram_kb_max:
            out.reasons.append(f"on-chip SRAM {kb:.0f} KB exceeds the budget of {limits.sram_kb_max} KB")
    return out
