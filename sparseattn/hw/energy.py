"""Stage 4 of the simulator: energy records (:class:`~sparseattn.hw.result.EnergyItem`) of one run.

* **compute** -- every bound operation at its width, the node and the voltage
  (:meth:`~sparseattn.hw.technology.Technology.op_energy_pj`), one record per (unit, stage, op, bits);
* **sram** -- reads of K, V, Q (and replaced reads) from the buffer that holds them, and writes of everything
  fetched from DRAM (but O) into the K/V buffer, by bank size (:meth:`~sparseattn.hw.technology.Technology.
  sram_pj_per_byte`);
* **dram** -- bytes per tensor x pJ/bit (the architecture's, else the technology table's for its DRAM kind), and
  every byte through the accelerator's memory interface (controller + PHY, ``dram.interface_pj_per_bit``);
* **leakage** -- logic (by area) and SRAM (by KB) leakage power over the run (:func:`~sparseattn.hw.technology.
  leakage_mw`).
"""

from __future__ import annotations

from .binding import Binding
from .result import AreaItem, EnergyItem
from .schema import AcceleratorArch
from .technology import Technology, leakage_mw
from .traffic import Traffic

QKV = ("q", "k", "v")


def compute_energy(arch: AcceleratorArch, bindings: list[Binding], tech: Technology) -> list[EnergyItem]:
    """One record per (unit, stage, op, bits), summed over scaling bases; an operation on a truncating datapath is
    priced (and recorded) at the datapath's width (:attr:`~sparseattn.hw.binding.Binding.priced_bits`)."""
    pj: dict[tuple[str, str, str, int], float] = {}
    for b in bindings:
        bits = b.priced_bits
        key = (b.unit.name, b.stage, b.op, bits)
        pj[key] = pj.get(key, 0.0) + b.count * tech.op_energy_pj(b.op, bits, arch.node_nm, arch.vdd)
    return [EnergyItem(u, "compute", op, e, stage=s, bits=bits) for (u, s, op, bits), e in pj.items()]


def memory_energy(arch: AcceleratorArch, mem: Traffic, tech: Technology) -> list[EnergyItem]:
    """DRAM reads and writes by tensor, SRAM reads by tensor and the SRAM writes of every DRAM fill."""
    pj_bit = arch.dram.pj_per_bit or tech.dram_pj_per_bit(arch.dram.kind)
    items = [EnergyItem("dram", "dram", "write" if t == "o" else "read", n * 8 * pj_bit, tensor=t)
             for t, n in mem.dram_bytes.items()]
    if tech.dram.interface_pj_per_bit:
        items.append(EnergyItem("dram_interface", "dram", "transfer",
                                sum(mem.dram_bytes.values()) * 8 * tech.dram.interface_pj_per_bit))
    for tensor, nbytes in mem.sram_read_bytes.items():
        buf = (arch.buffer_for(tensor if tensor in QKV else "k") or arch.buffers)[0]
        per_byte = tech.sram_pj_per_byte(buf.kb / buf.banks, arch.node_nm, arch.vdd)
        items.append(EnergyItem(buf.name, "sram", "read", nbytes * per_byte, tensor=tensor))
    written = sum(mem.dram_bytes.values()) - mem.dram_bytes.get("o", 0.0)
    fill = (arch.buffer_for("k") or arch.buffers)[0]
    per_byte = tech.sram_pj_per_byte(fill.kb / fill.banks, arch.node_nm, arch.vdd, write=True)
    items.append(EnergyItem(fill.name, "sram", "write", written * per_byte, tensor="fills"))
    return items


def leakage_energy(arch: AcceleratorArch, area: list[AreaItem], latency_s: float,
                   tech: Technology) -> list[EnergyItem]:
    """Leakage of the logic and of the SRAM over ``latency_s``."""
    return [EnergyItem("static", "leakage", part, mw * 1e-3 * latency_s * 1e12)
            for part, mw in leakage_mw(arch, area, tech).items()]
