"""Stage 1 of the simulator: bind every trace operation to the compute unit that executes it.

Every trace term ``(stage, op, bits, per)`` runs on the first unit whose ``executes`` patterns match; an unbound
operation is an error naming it and every unit's patterns. An operation wider than the unit takes
``ceil(bits / unit.bits)`` passes (bit-sliced); a narrower one packs ``unit.bits // bits`` per PE when the unit is
``subword`` (:func:`passes`). Each binding also says how its work is spread over query tiles: by kept pairs
(work on kept pairs, :func:`~sparseattn.core.workload.is_kept_work`), by query rows, or by valid pairs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from ..core.workload import Per, Workload, is_kept_work
from .config import ConfigError
from .schema import AcceleratorArch, ComputeUnit, UnitKind

Spread = Literal["kept", "valid", "row"]


@dataclass(frozen=True)
class Binding:
    """One trace term bound to a unit: ``count`` operations ``(stage, op, bits)`` scaling by ``per``."""

    stage: str
    op: str
    bits: int
    per: Per
    count: float
    unit: ComputeUnit
    spread: Spread  # how the work is spread over query tiles

    @property
    def passes(self) -> float:
        return passes(self.unit, self.bits)

    @property
    def priced_bits(self) -> int:
        """The width the operation is priced at: its own, or a truncating unit's narrower datapath."""
        return min(self.bits, self.unit.bits) if self.unit.truncates else self.bits


def passes(unit: ComputeUnit, bits: int) -> float:
    """PE cycles one operation of ``bits`` takes on ``unit`` (bit-sliced when wider -- one pass on a truncating
    datapath -- and packed when subword)."""
    if bits > unit.bits and not unit.truncates:
        return float(math.ceil(bits / unit.bits))
    if unit.subword:
        return 1.0 / max(1, unit.bits // bits)
    return 1.0


def spread_of(stage: str, per: Per) -> Spread:
    """Kept-pair work follows the kept pairs, per-row work the rows, everything else the valid pairs."""
    if is_kept_work(stage, per):
        return "kept"
    return "row" if per in (Per.ROW, Per.ROW_DIM) else "valid"


def unit_for(arch: AcceleratorArch, stage: str, op: str) -> ComputeUnit | None:
    """The first unit of ``arch`` that executes ``stage/op``."""
    return next((u for u in arch.units if u.runs(stage, op)), None)


def bind(arch: AcceleratorArch, trace: Workload) -> list[Binding]:
    """Every non-zero term of ``trace`` bound to its unit; raises :class:`ConfigError` listing every unbound
    operation."""
    bindings, missing = [], []
    for (key, per), count in trace.terms.items():
        unit = unit_for(arch, key.stage, key.op)
        if unit is None:
            missing.append(f"{key.stage}/{key.op}/{key.bits}")
        elif count:
            bindings.append(Binding(key.stage, key.op, key.bits, per, count, unit, spread_of(key.stage, per)))
    if missing:
        raise ConfigError(
            f"architecture {arch.name!r} has no unit that executes {sorted(set(missing))} of the "
            f"{trace.meta.get('method')!r} trace; add a matching 'stage/op' pattern to a unit's executes list "
            f"(units: {', '.join(f'{u.name}={u.executes}' for u in arch.units)})"
        )
    return bindings


def peak_formal_ops(arch: AcceleratorArch) -> float:
    """Peak dense-attention throughput of the units that run Q.K^T and P.V MACs, ops/s (2 per MAC).

    Bit-serial lanes count their AND-tree inputs per cycle divided by the plane width as 8-bit-MAC equivalents
    (PADE: 128 lanes x 41 / 8). Used to normalise comparisons to equal peak compute.
    """
    formal = {}
    for stage, op in (("qk", "mac"), ("qk", "add"), ("pv", "mac")):  # the unit each would be bound to
        unit = unit_for(arch, stage, op)
        if unit is not None and (op == "mac" or unit.kind == UnitKind.BIT_SERIAL_LANES):
            formal[unit.name] = unit
    macs = 0.0
    for u in formal.values():
        if u.kind == UnitKind.BIT_SERIAL_LANES:
            macs += u.count * u.rate("add") / u.bits
        else:
            macs += u.count * u.rate("mac")
    return 2 * macs * arch.clock_mhz * 1e6
