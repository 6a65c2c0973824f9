"""Normalising an architecture to another setting: as published, at another node, or iso-PADE.

PADE compares every baseline at **28 nm, 800 MHz, the same PE-array area, 352 KB SRAM and 256 GB/s HBM**
(its Table III and the baselines of section VI). :func:`iso` applies such a setting:

* node, clock (and the node's nominal voltage) replaced;
* the SRAM total set to the setting's: buffers that hold no K/V keep their size and the K/V buffers share the
  rest in proportion (when that leaves nothing, every buffer is scaled by one factor);
* DRAM replaced by the setting's kind and bandwidth (the attained fraction is the architecture's own);
* every unit's PE count scaled by one factor so the bottom-up PE-array area at the new node equals the
  reference architecture's (published module areas are dropped: they belong to the old node).

:func:`at_node` only moves node and voltage (SOFA's Table II normalises efficiency to 28 nm this way).
"""

from __future__ import annotations

from .registry import MissingCapabilityError, capabilities
from .schema import AcceleratorArch, ComputeUnit, Dram, IsoSetting, load_arch
from .technology import Technology, load_technology, unit_area_mm2


def _normalisable(arch: object, what: str) -> AcceleratorArch:
    """``arch`` when its kind can be normalised (:class:`~sparseattn.hw.registry.Capabilities`), else a
    :class:`~sparseattn.hw.registry.MissingCapabilityError` naming ``what`` asked."""
    if not capabilities(arch).normalisable:
        raise MissingCapabilityError(
            f"{what} normalises accelerators; {getattr(arch, 'name', arch)!r} is of kind {getattr(arch, 'kind', '?')!r}"
            ", which cannot be normalised (node, clock, PE-array area, SRAM)")
    return arch  # type: ignore[return-value]


def pe_array_area_mm2(arch: AcceleratorArch, node_nm: float | None = None, tech: Technology | None = None) -> float:
    """Bottom-up area of all compute units at ``node_nm`` (default: the architecture's), ignoring published areas."""
    tech = tech or load_technology()
    node = arch.node_nm if node_nm is None else node_nm
    return sum(unit_area_mm2(u.model_copy(update={"area_mm2": None}), node, tech) for u in arch.units)


def _scaled_unit(u: ComputeUnit, factor: float) -> ComputeUnit:
    """A unit with ``factor`` times the PEs; a systolic array grows in width (its height is the query tile it
    was designed around) and shrinks in height."""
    if u.rows is not None and u.cols is not None:
        if factor >= 1:
            rows, cols = u.rows, max(1, round(u.cols * factor))
        else:
            rows, cols = max(1, round(u.rows * factor)), u.cols
        return u.model_copy(update={"rows": rows, "cols": cols, "count": rows * cols, "area_mm2": None})
    return u.model_copy(update={"count": max(1, round(u.count * factor)), "area_mm2": None})


def iso(arch: AcceleratorArch, setting: IsoSetting | None = None, tech: Technology | None = None) -> AcceleratorArch:
    """``arch`` normalised to ``setting`` (default: PADE's Table III); see the module docstring."""
    arch = _normalisable(arch, "iso")
    setting = setting or arch.iso or IsoSetting()
    tech = tech or load_technology()
    reference = _normalisable(load_arch(setting.pe_area_of), "iso (its PE-area reference)")
    target = pe_array_area_mm2(reference, setting.node_nm, tech)
    factor = target / pe_array_area_mm2(arch, setting.node_nm, tech)
    kv = [b for b in arch.buffers if {"k", "v"} & set(b.holds)]
    other_kb = sum(b.kb for b in arch.buffers if b not in kv)
    kv_kb = sum(b.kb for b in kv)
    if setting.sram_kb > other_kb and kv_kb > 0:
        sizes = {b.name: (b.kb * (setting.sram_kb - other_kb) / kv_kb if b in kv else b.kb) for b in arch.buffers}
    else:
        sizes = {b.name: b.kb * setting.sram_kb / arch.sram_kb for b in arch.buffers}
    return arch.model_copy(
        update={
            "node_nm": setting.node_nm,
            "clock_mhz": setting.clock_mhz,
            "vdd": None,
            "units": [_scaled_unit(u, factor) for u in arch.units],
            "buffers": [b.model_copy(update={"kb": sizes[b.name]}) for b in arch.buffers],
            "dram": Dram(kind=setting.dram_kind, gbps=setting.dram_gbps, latency_ns=arch.dram.latency_ns,
                         efficiency=arch.dram.efficiency),
            "normalised": f"iso-{setting.pe_area_of} ({setting.node_nm:g} nm, {setting.clock_mhz:g} MHz, "
            f"{setting.sram_kb:g} KB, {setting.dram_gbps:g} GB/s, PE area x{factor:.3g})",
        }
    )


def at_node(arch: AcceleratorArch, node_nm: float, vdd: float | None = None) -> AcceleratorArch:
    """``arch`` with its energy and area evaluated at another node (and voltage); clock and PEs unchanged."""
    arch = _normalisable(arch, "at_node")
    return arch.model_copy(
        update={"node_nm": node_nm, "vdd": vdd, "normalised": f"at {node_nm:g} nm",
                "units": [u.model_copy(update={"area_mm2": None}) for u in arch.units]}
    )
