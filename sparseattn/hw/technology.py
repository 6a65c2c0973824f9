"""Technology model: energy per action and area per unit, by operand width, node and voltage.

The numbers live in ``configs/technology.yaml`` with their sources (Horowitz ISSCC'14 45 nm figures, SOFA's
CACTI SRAM area, O'Connor MICRO'17 HBM2 pJ/bit); this module only interpolates and scales them.

* **Widths.** Each primitive (``int_add``, ``int_mul``) has two anchors (8 and 32 bit); other widths follow the
  power law through them, e.g. a multiplier's energy grows as ``bits^1.98`` and an adder's as ``bits^0.87``.
* **Operations.** A trace operation ``(op, bits)`` is priced as a weighted sum of primitives (``op_cost``):
  a MAC is a multiplier plus an adder of twice the width, an exponential three multiply-adds, and so on.
* **Nodes and voltages.** ``E(node, V) = E_45 * (node/45) * (V/0.9)^2`` and ``A(node) = A_45 * (node/45)^2``
  -- the constant-field rule SOFA's Table II uses to normalise its baselines.

The result is an energy reference table (ERT) in the Accelergy sense, priced per action by the simulator's energy
stage (:mod:`~sparseattn.hw.energy`).

**Area** lives here too (:func:`area_items`): a unit's published module area where its architecture file gives one,
otherwise its PEs' arithmetic (:data:`PE_CONTENTS`) x the PE overhead at the node; each buffer by KB
(:meth:`Technology.sram_area_mm2`); and the leakage power of that area (:func:`leakage_mw`).
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from pydantic import Field

from ..core.errors import InvalidParameterError
from .config import ConfigError, read_yaml, validated
from .config import StrictModel as _Strict
from .result import AreaItem
from .schema import ComputeUnit, UnitKind

if TYPE_CHECKING:
    from .schema import AcceleratorArch

CONFIG_DIR = Path(__file__).parent / "configs"

# Arithmetic one PE of each kind contains (for its bottom-up area), in units of trace operations.
PE_CONTENTS: dict[UnitKind, dict[str, float]] = {
    UnitKind.MAC_ARRAY: {"mac": 1},
    UnitKind.SYSTOLIC_ARRAY: {"mac": 1},
    UnitKind.BIT_SERIAL_LANES: {"add": 1},  # times ops_per_cycle: one adder per AND-tree input
    UnitKind.ADDER_TREE: {"add": 1},
    UnitKind.LOG_UNIT: {"add": 1, "shift": 1},
    UnitKind.SORTER: {"compare": 1},
    UnitKind.EXP_UNIT: {"exp": 1},
    UnitKind.DIV_UNIT: {"div": 1},
    UnitKind.VECTOR_UNIT: {"add": 1, "mul": 1},
}


Energy = Annotated[float, Field(gt=0, le=1e6)]  # pJ per operation: physically between 0 and a microjoule
Area = Annotated[float, Field(gt=0, le=1e9)]  # um^2
Weight = Annotated[float, Field(ge=0, le=1000)]  # primitives per operation
Volts = Annotated[float, Field(ge=0.3, le=2.0)]
Width = Annotated[int, Field(ge=1, le=64)]  # operand bits of an anchor


class Reference(_Strict):
    node_nm: float = Field(ge=1, le=1000)
    vdd: Volts
    source: str


class SramModel(_Strict):
    read_pj_per_byte_8kb: float = Field(gt=0, le=1e4)
    write_factor: float = Field(gt=0, le=100)
    area_mm2_per_kb_28nm: float = Field(gt=0, le=10)
    leakage_mw_per_kb_28nm: float = Field(ge=0, le=100)


class DramModel(_Strict):
    pj_per_bit: dict[str, Annotated[float, Field(gt=0, le=1000)]]
    interface_pj_per_bit: float = Field(default=0.0, ge=0, le=100,
                                        description="the accelerator's memory interface (controller + PHY)")


class Scaling(_Strict):
    energy_exponent: float = Field(gt=0, le=4)
    area_exponent: float = Field(gt=0, le=4)


class Technology(_Strict):
    """The technology table (see ``configs/technology.yaml`` for every source)."""

    reference: Reference
    energy_pj: dict[str, dict[Width, Energy]]
    area_um2: dict[str, dict[Width, Area]]
    op_cost: dict[str, dict[str, Weight]]
    pe_area_overhead: float = Field(ge=1, le=100)
    pe_energy_overhead: float = Field(ge=1, le=100)
    sram: SramModel
    logic_leakage_mw_per_mm2_28nm: float = Field(ge=0, le=1e4)
    dram: DramModel
    nominal_vdd: dict[Annotated[int, Field(ge=1, le=1000)], Volts]
    scaling: Scaling

    # ------------------------------------------------------------------ scaling between nodes and voltages
    def vdd_of(self, node_nm: float) -> float:
        """Nominal supply voltage of a node (nearest listed node)."""
        nearest = min(self.nominal_vdd, key=lambda n: abs(n - node_nm))
        return self.nominal_vdd[nearest]

    def energy_scale(self, node_nm: float, vdd: float | None = None) -> float:
        """Factor from the 45 nm / 0.9 V reference to ``node_nm`` at ``vdd`` (nominal when ``None``)."""
        v = self.vdd_of(node_nm) if vdd is None else vdd
        ref = self.reference
        return (node_nm / ref.node_nm) ** self.scaling.energy_exponent * (v / ref.vdd) ** 2

    def area_scale(self, node_nm: float) -> float:
        return (node_nm / self.reference.node_nm) ** self.scaling.area_exponent

    # ------------------------------------------------------------------ arithmetic
    def primitive(self, table: str, name: str, bits: float) -> float:
        """A primitive's energy (``table='energy'``, pJ) or area (``'area'``, um^2) at the reference node."""
        anchors = (self.energy_pj if table == "energy" else self.area_um2).get(name)
        if anchors is None:
            raise InvalidParameterError(f"technology has no primitive {name!r}; known: {sorted(self.energy_pj)}")
        (b0, v0), (b1, v1) = sorted(anchors.items())[:1] + sorted(anchors.items())[-1:]
        exponent = math.log(v1 / v0) / math.log(b1 / b0)
        return v0 * (bits / b0) ** exponent

    def _priced(self, table: str, op: str, bits: int) -> float:
        recipe = self.op_cost.get(op)
        if recipe is None:
            raise InvalidParameterError(f"technology has no cost for operation {op!r}; known: {sorted(self.op_cost)}")
        total = 0.0
        for prim, weight in recipe.items():
            width = 2 * bits if prim.endswith("_2x") else bits
            total += weight * self.primitive(table, prim.removesuffix("_2x"), width)
        return total

    def op_energy_pj(self, op: str, bits: int, node_nm: float, vdd: float | None = None) -> float:
        """Energy of one operation in a processing element (arithmetic x PE overhead), pJ."""
        return self._priced("energy", op, bits) * self.pe_energy_overhead * self.energy_scale(node_nm, vdd)

    def pe_area_mm2(self, ops: dict[str, float], bits: int, node_nm: float) -> float:
        """Area of one PE that holds ``ops[op]`` units of each operation at ``bits`` (x PE overhead), mm^2."""
        um2 = sum(n * self._priced("area", op, bits) for op, n in ops.items())
        return um2 * self.pe_area_overhead * self.area_scale(node_nm) * 1e-6

    # ------------------------------------------------------------------ memories
    def sram_pj_per_byte(self, bank_kb: float, node_nm: float, vdd: float | None = None, write: bool = False) -> float:
        e = self.sram.read_pj_per_byte_8kb * math.sqrt(max(bank_kb, 1.0) / 8.0)
        return e * (self.sram.write_factor if write else 1.0) * self.energy_scale(node_nm, vdd)

    def sram_area_mm2(self, kb: float, node_nm: float) -> float:
        return kb * self.sram.area_mm2_per_kb_28nm * self.area_scale(node_nm) / self.area_scale(28)

    def sram_leakage_mw(self, kb: float, node_nm: float) -> float:
        return kb * self.sram.leakage_mw_per_kb_28nm * (node_nm / 28)

    def logic_leakage_mw(self, area_mm2: float, node_nm: float) -> float:
        return area_mm2 * self.logic_leakage_mw_per_mm2_28nm * (node_nm / 28)

    def dram_pj_per_bit(self, kind: str) -> float:
        if kind not in self.dram.pj_per_bit:
            raise InvalidParameterError(f"unknown DRAM kind {kind!r}; known: {sorted(self.dram.pj_per_bit)}")
        return self.dram.pj_per_bit[kind]


@lru_cache(maxsize=8)
def load_technology(path: str | Path | None = None) -> Technology:
    """The technology table from ``path`` (default: the bundled ``configs/technology.yaml``); errors name the file
    and the key path. The parsed file is cached on (path, modification time, size), so an edited file is
    re-read."""
    file = Path(path) if path else CONFIG_DIR / "technology.yaml"
    if not file.is_file():
        raise ConfigError(f"technology file {str(file)!r} does not exist")
    stat = file.stat()
    return _load_technology(str(file.resolve()), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=8)
def _load_technology(path: str, mtime_ns: int, size: int) -> Technology:
    return validated(Technology, read_yaml(Path(path)), path)


# ---------------------------------------------------------------------------------------------------- area
def unit_area_mm2(unit: ComputeUnit, node_nm: float, tech: Technology) -> float:
    """A unit's area: its published module area when given, else PEs x arithmetic x PE overhead at ``node_nm``
    (bit-serial lanes and adder trees hold one adder per operation they complete in a cycle)."""
    if unit.area_mm2 is not None:
        return unit.area_mm2
    contents = dict(PE_CONTENTS[unit.kind])
    if unit.kind in (UnitKind.BIT_SERIAL_LANES, UnitKind.ADDER_TREE):
        contents = {op: n * unit.rate(op) for op, n in contents.items()}
    return unit.count * tech.pe_area_mm2(contents, unit.bits, node_nm)


def area_items(arch: AcceleratorArch, tech: Technology) -> list[AreaItem]:
    """Area of every unit and buffer of ``arch`` at its node."""
    items = [AreaItem(u.name, "unit", unit_area_mm2(u, arch.node_nm, tech),
                      "published" if u.area_mm2 is not None else "model") for u in arch.units]
    return items + [AreaItem(b.name, "sram", tech.sram_area_mm2(b.kb, arch.node_nm)) for b in arch.buffers]


def leakage_mw(arch: AcceleratorArch, area: list[AreaItem], tech: Technology) -> dict[str, float]:
    """Leakage power of the logic (by its area) and of the SRAM (by its KB), mW."""
    logic = sum(a.mm2 for a in area if a.kind == "unit")
    return {"logic": tech.logic_leakage_mw(logic, arch.node_nm), "sram": tech.sram_leakage_mw(arch.sram_kb,
                                                                                               arch.node_nm)}
