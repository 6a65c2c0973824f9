"""Architecture kinds: one registry entry per kind (``accelerator``, ``gpu``, ``replicated``, the spatial ``mesh``)
says which schema validates its files, which simulator runs it and what it offers its callers (its
:class:`Capabilities`: whether it reads a trace, takes a mapping, has an area and an SRAM total, can be
normalised, and which method's trace it executes).

Everything that differs between kinds goes through here, so no caller tests ``isinstance(arch, GpuArch)`` or
``arch.kind == "gpu"``: :func:`~sparseattn.hw.simulate` dispatches on ``arch.kind``,
:func:`~sparseattn.hw.traces.trace_for` asks the kind which trace an architecture runs (a GPU runs dense attention
whatever trace it is handed), :func:`~sparseattn.hw.schema.load_arch` validates a file with its kind's schema, and
a caller that needs a capability asks :func:`require` for it, which fails clearly when the kind lacks it (the DSE's
area budget on a kind without an area model is an error, never a silently skipped constraint).

A new kind registers itself at import, capabilities included (there is no default)::

    register_kind(ArchKind("mesh", MeshArch, simulate_mesh, Capabilities(method=lambda a: a.core.method, ...)))

the built-in kinds are imported on first use.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from .config import ConfigError

if TYPE_CHECKING:
    from ..core.shape import Shape
    from .mapping import Mapping
    from .technology import Technology

BUILTIN_MODULES = ("accelerator", "gpu", "replicate", "spatial")


class MissingCapabilityError(ConfigError):
    """A caller needs something an architecture's kind does not offer (the message names both)."""


@dataclass(frozen=True)
class Capabilities:
    """What the architectures of a kind offer their callers. ``None`` (or ``False``) marks a capability the kind
    lacks; :func:`require` turns asking for one into a :class:`MissingCapabilityError`.

    * ``method(arch)`` -- the method whose trace the architecture executes (``"dense"`` for a GPU);
    * ``runs_trace`` -- the simulation reads the trace's work and sparsity (``False``: it runs dense attention of
      the shape whatever trace it is handed, so ``--trace`` and ``--density`` mean nothing to it);
    * ``mapping(arch)`` -- its default mapping (tiles per stage); ``None``: it takes no mapping;
    * ``check_fit(arch, shape, mapping)`` -- raises :class:`ConfigError` when the mapping's tiles (``None``: the
      default mapping) do not fit its buffers; ``None``: it has no buffers to fit;
    * ``area_mm2(arch, tech)`` -- its area without simulating it; ``None``: no area model;
    * ``sram_kb(arch)`` -- its total on-chip SRAM; ``None``: no SRAM model;
    * ``normalisable`` -- :func:`~sparseattn.hw.normalise.iso` and :func:`~sparseattn.hw.normalise.at_node` apply;
    * ``uses_technology`` -- its energy and area come from a technology table (``False``: a GPU's board power and
      die area), so ``--technology`` changes its result.
    """

    method: Callable[[Any], str]
    runs_trace: bool
    mapping: Callable[[Any], Mapping] | None
    check_fit: Callable[[Any, Shape, Mapping | None], Any] | None
    area_mm2: Callable[[Any, Technology], float] | None
    sram_kb: Callable[[Any], float] | None
    normalisable: bool
    uses_technology: bool = True


@dataclass(frozen=True)
class ArchKind:
    """One kind of architecture.

    ``simulate(arch, trace, shape, mapping, tech) -> SimResult`` gets a resolved architecture of this kind, a
    :class:`~sparseattn.core.workload.Workload`, the target shape (``None``: the trace's own), a mapping or
    ``None`` (the kind's default) and a technology table or ``None`` (the bundled one). ``capabilities`` is the
    kind's :class:`Capabilities`, or a function of the architecture giving them (a wrapper kind such as
    ``replicated`` offers what its base offers). ``noun`` names the kind in messages ("the GPU 'h100'").
    """

    name: str
    schema: type
    simulate: Callable[..., Any]
    capabilities: Capabilities | Callable[[Any], Capabilities]
    noun: str = ""

    def describe(self, arch: Any) -> str:
        """``the GPU 'h100'``: the architecture in a message."""
        return f"the {self.noun or self.name} {getattr(arch, 'name', arch)!r}"


_KINDS: dict[str, ArchKind] = {}


def register_kind(kind: ArchKind) -> ArchKind:
    """Add (or replace) a kind; returns it."""
    _KINDS[kind.name] = kind
    return kind


def _load_builtins() -> None:
    for module in BUILTIN_MODULES:
        importlib.import_module(f"{__package__}.{module}")


def kinds() -> list[str]:
    """Names of every registered kind."""
    _load_builtins()
    return sorted(_KINDS)


def arch_kind(kind: Any, where: str = "arch") -> ArchKind:
    """The registry entry of ``kind`` (a name, or an architecture object with a ``kind`` field)."""
    _load_builtins()
    name = getattr(kind, "kind", kind)
    if name not in _KINDS:
        raise ConfigError(f"{where}: unknown architecture kind {name!r}; registered: {', '.join(sorted(_KINDS))}")
    return _KINDS[name]


def capabilities(arch: Any) -> Capabilities:
    """What ``arch`` (an architecture object) offers, from its kind's registry entry."""
    caps = arch_kind(arch).capabilities
    return caps if isinstance(caps, Capabilities) else caps(arch)


CAPABILITY_NAMES = tuple(f.name for f in fields(Capabilities))


def require(arch: Any, capability: str, needed_by: str) -> Any:
    """The capability ``capability`` of ``arch`` (a field of :class:`Capabilities`); raises
    :class:`MissingCapabilityError` naming the architecture, its kind and ``needed_by`` when the kind lacks it."""
    if capability not in CAPABILITY_NAMES:
        raise ValueError(f"unknown capability {capability!r}; capabilities: {', '.join(CAPABILITY_NAMES)}")
    value = getattr(capabilities(arch), capability)
    if value is None or value is False:
        kind = arch_kind(arch)
        raise MissingCapabilityError(f"{needed_by} needs {_MEANING[capability]}, which {kind.describe(arch)} (kind "
                                     f"{kind.name!r}) does not have")
    return value


_MEANING = {
    "method": "a method to run",
    "runs_trace": "a simulation that reads the trace (its work and sparsity)",
    "mapping": "a mapping (tiles per stage)",
    "check_fit": "buffers to fit the tiles in",
    "area_mm2": "an area model",
    "sram_kb": "an on-chip SRAM total",
    "normalisable": "normalisation (node, clock, PE-array area, SRAM)",
}


def method_of(arch: Any) -> str:
    """The method whose trace ``arch`` executes (``"dense"`` for a GPU)."""
    return capabilities(arch).method(arch)
