"""Replication: ``n`` identical copies of an architecture (compute, SRAM and DRAM bandwidth each) splitting the
heads of every layer between them, as an explicit architecture transformation.

:func:`replicate` wraps an architecture into one of kind ``replicated``; simulating it simulates the base and
applies :func:`split_heads`:

* each copy runs ``1/n`` of the heads of every layer (layers still run one after another). Whole KV groups stay on
  one copy (their heads share K/V reads), so ``1 <= n <= kv_heads``; a fractional ``n`` is the continuous
  idealisation a lever analysis bisects on;
* the work of a run is linear in its heads, except the part paid once per run whatever the work
  (``SimResult.fixed_cycles``: the first DRAM access, a GPU's kernel launches), so a copy takes
  ``(cycles - fixed) / n + fixed``;
* dynamic energy is the same in total (the copies share the work), static energy (leakage, a GPU's board power)
  is ``n`` copies x their power x the shorter run; area and the published area are ``n`` x the base's.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any, Literal

from pydantic import Field

from ..core.shape import Shape
from ..core.workload import Workload
from .config import ConfigError, StrictModel
from .registry import ArchKind, Capabilities, arch_kind, capabilities, register_kind
from .result import STATIC_KINDS, AreaItem, SimResult
from .schema import AcceleratorArch, GpuArch

Base = Annotated[AcceleratorArch | GpuArch, Field(discriminator="kind")]


class ReplicatedArch(StrictModel):
    """``copies`` identical ``base`` architectures splitting the heads of every layer."""

    kind: Literal["replicated"] = "replicated"
    base: Base
    copies: float = Field(ge=1, description="identical copies (at most the model's KV heads)")

    @property
    def name(self) -> str:
        return f"{self.copies:g}x {self.base.name}"


def replicate(arch: AcceleratorArch | GpuArch, copies: float) -> ReplicatedArch:
    """``copies`` identical ``arch`` splitting the heads of every layer (see the module docstring)."""
    if not copies >= 1:
        raise ConfigError(f"replicate: copies must be >= 1, got {copies!r}")
    if isinstance(arch, ReplicatedArch):
        return ReplicatedArch(base=arch.base, copies=arch.copies * copies)
    return ReplicatedArch(base=arch, copies=copies)


def split_heads(result: SimResult, copies: float) -> SimResult:
    """The result of ``copies`` identical architectures splitting the heads of the run ``result`` measured."""
    kv_heads = result.shape["kv_heads"]
    if not 1 <= copies <= kv_heads:
        raise ConfigError(f"{copies:g} copies cannot split {kv_heads} KV heads (whole GQA groups per copy): "
                          f"copies must be in [1, {kv_heads}]")
    fixed = result.fixed_cycles
    cycles = (result.cycles - fixed) / copies + fixed
    stretch = cycles / result.cycles  # a copy's run time over the single design's
    energy = [replace(e, pj=e.pj * copies * stretch) if e.kind in STATIC_KINDS else e for e in result.energy]
    area = [AreaItem(a.component, a.kind, a.mm2 * copies, a.basis) for a in result.area]
    return replace(
        result,
        arch=f"{copies:g}x {result.arch}",
        kind="replicated",
        cycles=cycles,
        latency_s=result.latency_s * stretch,
        energy=energy,
        area=area,
        utilisation={u: v / (copies * stretch) for u, v in result.utilisation.items()},
        stage_cycles={s: v / copies for s, v in result.stage_cycles.items()},
        notes=[*result.notes, f"{copies:g} identical copies, each running {result.shape['heads'] / copies:.3g} of "
               f"the {result.shape['heads']} heads of every layer: latency (cycles - {fixed:.4g} fixed) / "
               f"{copies:g} + fixed; static energy and area x {copies:g}; stage cycles per copy"],
    )


def _simulate(arch: ReplicatedArch, trace: Workload, shape: Shape | None = None, mapping: Any = None,
              tech: Any = None) -> SimResult:
    base = arch_kind(arch.base).simulate(arch.base, trace, shape, mapping, tech)
    return split_heads(base, arch.copies)


def _times_copies(f: Any) -> Any:
    return None if f is None else (lambda arch, *args: arch.copies * f(arch.base, *args))


def _on_base(f: Any) -> Any:
    return None if f is None else (lambda arch, *args: f(arch.base, *args))


def _capabilities(arch: ReplicatedArch) -> Capabilities:
    """What the base offers, area and SRAM ``copies`` times; a replicated architecture is not normalised itself
    (normalise its base, then replicate)."""
    base = capabilities(arch.base)
    return Capabilities(method=_on_base(base.method), runs_trace=base.runs_trace, mapping=_on_base(base.mapping),
                        check_fit=_on_base(base.check_fit), area_mm2=_times_copies(base.area_mm2),
                        sram_kb=_times_copies(base.sram_kb), normalisable=False,
                        uses_technology=base.uses_technology)


register_kind(ArchKind("replicated", ReplicatedArch, _simulate, _capabilities, noun="replicated architecture"))
