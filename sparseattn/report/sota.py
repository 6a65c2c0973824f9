"""SOFA and STAR against state-of-the-art accelerators, by SOFA's own Table II arithmetic (SOFA section VI).

SOFA's 15.8x / 10.3x / 9.3x (and STAR's "up to" 16.1x / 27.1x) are arithmetic on published figures
(:mod:`sparseattn.hw.tableii`). Our simulated SOFA (STAR) runs the table's workload, Llama-7B attention at 512 tokens,
under its one accounting (``hw/published/claims.yaml``), and :func:`simulated_row` normalises it as the table
normalises every row: operations on the full ``S^2``, core power to 28 nm at the voltage the design's published row
implies (:func:`table_vdd`), areas ``x (28/node)^2``, latency at 128 multipliers and 1 GHz. The claims themselves are
built in :mod:`~sparseattn.report.brackets` against the published baseline rows (FACT and DTATrans included).
"""

from __future__ import annotations

from ..core.shape import Shape
from ..hw.result import SimResult
from ..hw.schema import UnitKind
from ..hw.tableii import Measured, TableRow, implied_vdd, load_table, row_from_simulation
from ..hw.technology import load_technology
from .claim import Design, build, sim

TABLE_WORKLOAD = ("llama2-7b", 512)  # SOFA Table II: 137 GOPs = 4 x 512^2 x 4096 x 32
SIM_BASELINES = ("a3", "elsa", "sanger", "dota", "energon", "spatten")


def table_ops(shape: Shape) -> float:
    """Operations Table II counts for attention: ``4 x q_len x k_len x head_dim`` per head, the full ``S^2``
    whatever the mask (137 GOPs for Llama-7B at 512 tokens)."""
    return 4.0 * shape.q_len * shape.k_len * shape.head_dim * shape.heads * shape.layers * shape.batch


def multipliers(arch) -> int:
    """Multipliers of a design for the latency column's scaling: PEs of its MAC and systolic units of 8 bits or
    more (SOFA: 128x4 KV-generation + 2 x 128x2 SU-FA = 1024, the count its 45 ms implies)."""
    kinds = (UnitKind.MAC_ARRAY, UnitKind.SYSTOLIC_ARRAY)
    return sum(u.count for u in arch.units if u.kind in kinds and u.bits >= 8) or 1


def measured_of(design: Design, r: SimResult) -> Measured:
    arch = build(design)
    io = sum(e.pj for e in r.energy if e.kind == "dram") * 1e-12
    shape = Shape(**r.shape)
    return Measured(name=design.name, ops=table_ops(shape), latency_s=r.latency_s, core_energy_j=r.energy_j - io,
                    io_energy_j=io, area_mm2=r.total_area_mm2, node_nm=arch.node_nm, vdd=table_vdd(design.name, arch),
                    clock_mhz=arch.clock_mhz, multipliers=multipliers(arch))


def table_vdd(name: str, arch) -> float:
    """The supply voltage Table II's power rule applies to a design's row: the one its published row implies
    (:func:`~sparseattn.hw.tableii.implied_vdd`; SOFA 1.0 V: 24,423 GOPS / 0.95 W = 25,708 GOPS/W, no factor), so
    our row and the paper's are normalised alike; STAR is SOFA's successor on the same node and takes SOFA's. A
    design without a row takes its own (or the technology table's) voltage."""
    table = load_table()
    rows = {r.name for r in table.rows}
    key = "sofa" if name == "star" else name
    if key in rows:
        return round(implied_vdd(table.row(key), table), 2)  # to 10 mV: the rows print 4-5 digits
    return arch.vdd or load_technology().vdd_of(arch.node_nm)


def simulated_row(name: str, model: str = TABLE_WORKLOAD[0], seq: int = TABLE_WORKLOAD[1],
                  density: float | None = None, design: Design | None = None) -> TableRow:
    """A Table II row of our simulation of ``name`` on ``model`` at ``seq`` tokens, normalised as the table's."""
    design = design or Design(name)
    r = sim(design, model, seq, density)
    return row_from_simulation(measured_of(design, r), source=f"simulated on {model} at {seq} tokens")
