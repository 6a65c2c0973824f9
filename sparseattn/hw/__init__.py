"""Hardware models that consume traces (DESIGN.md): architectures, mappings, technology, the staged simulator.

``simulate(arch, trace, shape=None, mapping=None)`` takes an architecture, a workload (a trace and a model shape)
and a mapping as separate inputs and dispatches on the architecture's kind (:mod:`.registry`, where a new kind
registers itself with its :class:`Capabilities`).

This namespace is the public API: loading architectures, model shapes, traces, mappings and technology tables,
simulating, and the result and schema types. The simulator's stages (binding, tiling, traffic, timing, the lane
model, energy, area) are modules of this package (:mod:`.binding`, :mod:`.tiling`, :mod:`.traffic`,
:mod:`.timing`, :mod:`.bitserial`, :mod:`.energy`, :mod:`.technology`), imported from there.
"""

from .config import ConfigError
from .mapping import Mapping, Tile, load_mapping
from .overrides import with_overrides
from .registry import ArchKind, Capabilities, MissingCapabilityError, capabilities, kinds, method_of, register_kind
from .replicate import ReplicatedArch, replicate
from .result import AreaItem, EnergyItem, SimResult
from .schema import AcceleratorArch, GpuArch, arch_names, load_arch
from .shapes import ModelShape, load_model_shape, model_shape_names
from .simulator import simulate
from .technology import Technology, load_technology
from .traces import load_trace, trace_for, trace_names, with_density

__all__ = [
    "AcceleratorArch",
    "ArchKind",
    "AreaItem",
    "Capabilities",
    "ConfigError",
    "EnergyItem",
    "GpuArch",
    "Mapping",
    "MissingCapabilityError",
    "ModelShape",
    "ReplicatedArch",
    "SimResult",
    "Technology",
    "Tile",
    "arch_names",
    "capabilities",
    "kinds",
    "load_arch",
    "load_mapping",
    "load_model_shape",
    "load_technology",
    "load_trace",
    "method_of",
    "model_shape_names",
    "register_kind",
    "replicate",
    "simulate",
    "trace_for",
    "trace_names",
    "with_density",
    "with_overrides",
]
