"""Constraints checked before a trial simulates anything: the mapping's tiles fit the buffers (always, by
:func:`~sparseattn.hw.check_fit`), and the optional area and SRAM budgets of the space.

Each constraint gives a value in Optuna's convention (``<= 0`` feasible, ``> 0`` violated, in units of the
budget: 0.1 is 10 % over), which the study hands to the sampler with ``Trial.set_constraint`` so TPE and the GP
learn where the feasible region is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..core.shape import Shape
from ..hw import AcceleratorArch, area_items, check_fit, load_technology
from ..hw.config import ConfigError
from .space import Constraints

CONSTRAINT_NAMES = ("buffers", "area", "sram")


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
    """Area of an architecture without simulating it (a GPU: its die)."""
    if isinstance(arch, AcceleratorArch):
        return sum(a.mm2 for a in area_items(arch, load_technology()))
    return float(getattr(arch, "die_area_mm2", 0.0))


def _buffers(arch: Any, shape: Shape) -> tuple[float, str | None]:
    if not isinstance(arch, AcceleratorArch):
        return 0.0, None
    try:
        check_fit(arch, shape, arch.mapping)
    except ConfigError as err:
        return 1.0, str(err)
    return 0.0, None


def check(arch: Any, shape: Shape, limits: Constraints) -> Feasibility:
    """Every constraint of ``arch`` under its mapping at ``shape`` (see the module docstring)."""
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
        kb = float(getattr(arch, "sram_kb", 0.0))
        out.values["sram"] = (kb - limits.sram_kb_max) / limits.sram_kb_max
        if kb > limits.sram_kb_max:
            out.reasons.append(f"on-chip SRAM {kb:.0f} KB exceeds the budget of {limits.sram_kb_max} KB")
    return out
