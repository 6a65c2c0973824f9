"""SOFA's Table II as data, its normalisation rules, and the arithmetic SOFA's accelerator claims are made of.

SOFA's 15.8x energy efficiency, 10.3x area efficiency and 9.3x speed-up over eight accelerators (MICRO'24,
section VI, Table II) are arithmetic on the **published** rows of
its Table II (``published/sofa_table2.yaml``, every row with its source), not simulations:

* **energy**: device GOPS/W (GOPS over normalised core power plus IO power) of SOFA over each baseline that
  publishes IO power (A3, ELSA, Energon, SpAtten), averaged: 7183 / (300, 1004, 450, 447) -> 15.78;
* **area**: GOPS per mm^2 with every area scaled to 28 nm (``area x (28 / node)^2``), SOFA over all eight,
  averaged -> 10.26;
* **speed**: the latency column (137 GOPs of Llama-7B attention, each design scaled to 128 multipliers at
  1 GHz: ``137 / (GOPS x 128 / multipliers x 1 GHz / f)``), each baseline over SOFA, averaged -> 9.36.

The caption's power rule is ``P_core ~ (1/s) (1.0 / Vdd)^2`` with ``s = node / 28 nm``; the published core GOPS/W
column follows it with Vdd = 1.1 V for the 40/45 nm designs (A3: 221 / (0.205 x 28/40 x (1/1.1)^2) = 1863), and
the device column adds the IO power unscaled (A3: 221 / (0.1186 + 0.617) = 300). GOPS are not scaled by the clock.

:func:`row_from_simulation` turns a simulated design into a row normalised the same way (operations counted on the
full ``S^2``, as the 137 GOPs are, whatever the causal mask), so a simulated SOFA (or any design) can stand in for
the paper's row in the same arithmetic (:func:`claims_of`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field

from .config import ConfigError, StrictModel, read_yaml, validated

TABLE_FILE = Path(__file__).parent / "published" / "sofa_table2.yaml"
Metric = Literal["energy", "area", "speed"]


class TableRow(StrictModel):
    """One design's row of SOFA's Table II, as published (efficiencies already normalised by the paper)."""

    name: str
    sparsity: Literal["structured", "unstructured"]
    accuracy_loss_pct: float = Field(ge=0, le=100)
    saved_computation_pct: float = Field(ge=0, le=100)
    node_nm: float = Field(gt=0, le=1000)
    clock_mhz: float = Field(gt=0, le=1e4)
    area_mm2: float = Field(gt=0, le=1e4)
    core_w: float = Field(gt=0, le=1e4)
    io_w: float | None = Field(default=None, gt=0, le=1e4)
    gops: float = Field(gt=0, le=1e7)
    core_gops_per_w: float = Field(gt=0, le=1e7)
    device_gops_per_w: float | None = Field(default=None, gt=0, le=1e7)
    gops_per_mm2: float = Field(gt=0, le=1e7)
    latency_ms: float = Field(gt=0, le=1e7)
    multipliers: int | None = Field(default=None, gt=0, le=10**7, description="stated multiplier count")
    source: str


class Table(StrictModel):
    """SOFA's Table II and the reference point of its normalisation."""

    source: str
    workload_gops: float = Field(gt=0, description="the latency column's workload (Llama-7B attention)")
    reference_node_nm: float = Field(gt=0)
    reference_vdd: float = Field(gt=0)
    reference_multipliers: int = Field(gt=0)
    reference_clock_mhz: float = Field(gt=0)
    rows: list[TableRow] = Field(min_length=1)

    def row(self, name: str) -> TableRow:
        for r in self.rows:
            if r.name == name:
                return r
        raise ConfigError(f"SOFA Table II has no row {name!r}; rows: {', '.join(r.name for r in self.rows)}")

    def baselines(self, *exclude: str) -> list[TableRow]:
        """Every row but SOFA's (the paper's subject) and those named in ``exclude``."""
        return [r for r in self.rows if r.name not in ("sofa", *exclude)]


@lru_cache(maxsize=4)
def load_table(path: str | None = None) -> Table:
    """The bundled Table II (or a file of the same form)."""
    file = Path(path) if path else TABLE_FILE
    return validated(Table, read_yaml(file), str(file))


# ------------------------------------------------------------------------------------------------ the rules
def area_at(area_mm2: float, node_nm: float, reference_nm: float = 28.0) -> float:
    """An area carried to ``reference_nm`` by the constant-field rule, ``area x (reference / node)^2``."""
    return area_mm2 * (reference_nm / node_nm) ** 2


def core_power_at(power_w: float, node_nm: float, vdd: float, reference_nm: float = 28.0,
                  reference_vdd: float = 1.0) -> float:
    """Core power normalised by the caption's rule ``P ~ (1/s) (Vref / Vdd)^2``, ``s = node / reference``."""
    return power_w * (reference_nm / node_nm) * (reference_vdd / vdd) ** 2


def normalised_latency_ms(gops: float, multipliers: float, clock_mhz: float, table: Table) -> float:
    """The latency column: the table's workload at ``gops`` scaled to the reference multipliers and clock."""
    scaled = gops * (table.reference_multipliers / multipliers) * (table.reference_clock_mhz / clock_mhz)
    return table.workload_gops / scaled * 1e3


def implied_multipliers(r: TableRow, table: Table) -> float:
    """The multipliers a row's latency implies (its stated count when it has one)."""
    if r.multipliers is not None:
        return float(r.multipliers)
    return (table.reference_multipliers * r.latency_ms * 1e-3 * r.gops * (r.clock_mhz / table.reference_clock_mhz)
            / table.workload_gops)


def implied_vdd(r: TableRow, table: Table) -> float:
    """The supply voltage a row's core GOPS/W implies under the caption's power rule."""
    raw = r.core_w * (table.reference_node_nm / r.node_nm)
    return table.reference_vdd * (raw * r.core_gops_per_w / r.gops) ** 0.5


# ------------------------------------------------------------------------------------------------ claims
def ratio(ours: TableRow, base: TableRow, metric: Metric) -> float | None:
    """``ours`` over ``base`` on one column (``None`` where the base publishes no such figure)."""
    if metric == "energy":
        if ours.device_gops_per_w is None or base.device_gops_per_w is None:
            return None
        return ours.device_gops_per_w / base.device_gops_per_w
    if metric == "area":
        return ours.gops_per_mm2 / base.gops_per_mm2
    return base.latency_ms / ours.latency_ms


def per_baseline(ours: TableRow, table: Table, metric: Metric) -> dict[str, float]:
    """``ours`` over every other row of ``table`` that publishes ``metric``."""
    out = {}
    for base in table.baselines(ours.name):
        r = ratio(ours, base, metric)
        if r is not None:
            out[base.name] = r
    return out


def claims_of(ours: TableRow, table: Table | None = None) -> dict[Metric, dict[str, float]]:
    """Per-baseline ratios of ``ours`` for the three columns SOFA's claims use."""
    table = table or load_table()
    return {m: per_baseline(ours, table, m) for m in ("energy", "area", "speed")}


def mean(values: dict[str, float]) -> float:
    return sum(values.values()) / len(values)


# ------------------------------------------------------------------------------------------------ our rows
@dataclass(frozen=True)
class Measured:
    """What a simulation of the table's workload gives, before normalisation."""

    name: str
    ops: float  # operations the table counts for the workload (full S^2)
    latency_s: float
    core_energy_j: float  # compute, SRAM, leakage
    io_energy_j: float  # DRAM and its interface
    area_mm2: float  # at the design's node
    node_nm: float
    vdd: float
    clock_mhz: float
    multipliers: int


def row_from_simulation(m: Measured, table: Table | None = None, source: str = "simulated") -> TableRow:
    """A Table II row of a simulated design, normalised as the paper normalises its rows: core power by
    ``(1/s)(1/Vdd)^2``, area by ``s^2``, latency to 128 multipliers at 1 GHz; GOPS from the full ``S^2`` count."""
    table = table or load_table()
    gops = m.ops / m.latency_s / 1e9
    core_w = m.core_energy_j / m.latency_s
    io_w = m.io_energy_j / m.latency_s
    core_norm = core_power_at(core_w, m.node_nm, m.vdd, table.reference_node_nm, table.reference_vdd)
    area_norm = area_at(m.area_mm2, m.node_nm, table.reference_node_nm)
    return TableRow(
        name=m.name, sparsity="unstructured", accuracy_loss_pct=0.0, saved_computation_pct=0.0, node_nm=m.node_nm,
        clock_mhz=m.clock_mhz, area_mm2=m.area_mm2, core_w=core_w, io_w=io_w, gops=gops,
        core_gops_per_w=gops / core_norm, device_gops_per_w=gops / (core_norm + io_w),
        gops_per_mm2=gops / area_norm, latency_ms=normalised_latency_ms(gops, m.multipliers, m.clock_mhz, table),
        multipliers=m.multipliers, source=source,
    )
