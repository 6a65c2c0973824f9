"""Architecture kinds: one registry entry per kind (``accelerator``, ``gpu``, ``replicated``; a spatial ``mesh``
next) says which schema validates its files, which simulator runs it and which method's trace it executes.

Everything that differs between kinds goes through here, so no caller tests ``isinstance(arch, GpuArch)``:
:func:`~sparseattn.hw.simulate` dispatches on ``arch.kind``, :func:`~sparseattn.hw.traces.trace_for` asks the
kind which trace an architecture runs (a GPU runs dense attention whatever trace it is handed), and
:func:`~sparseattn.hw.schema.load_arch` validates a file with its kind's schema.

A new kind registers itself at import: ``register_kind(ArchKind("mesh", MeshArch, simulate_mesh, method_of))``;
the built-in kinds are imported on first use.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .config import ConfigError

BUILTIN_MODULES = ("accelerator", "gpu", "replicate", "spatial")


@dataclass(frozen=True)
class ArchKind:
    """One kind of architecture.

    ``simulate(arch, trace, shape, mapping, tech) -> SimResult`` gets a resolved architecture of this kind, a
    :class:`~sparseattn.core.workload.Workload`, the target shape (``None``: the trace's own), a mapping or
    ``None`` (the kind's default) and a technology table or ``None`` (the bundled one). ``method(arch)`` names
    the method whose trace the architecture executes.
    """

    name: str
    schema: type
    simulate: Callable[..., Any]
    method: Callable[[Any], str]


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


def method_of(arch: Any) -> str:
    """The method whose trace ``arch`` executes (``"dense"`` for a GPU)."""
    return arch_kind(arch).method(arch)
