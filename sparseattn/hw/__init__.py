"""Hardware models that consume traces (DESIGN.md): architectures, mappings, technology, the staged simulator.

``simulate(arch, trace, shape=None, mapping=None)`` takes an architecture, a workload (a trace and a model shape)
and a mapping as separate inputs and dispatches on the architecture's kind (:mod:`.registry`).
"""

from .binding import Binding, bind, peak_formal_ops
from .bitserial import LaneUtilisation, lane_utilisation, lane_utilisations, trace_lane_utilisation
from .config import ConfigError
from .gpu import roofline_seconds, simulate_gpu
from .mapping import Mapping, Tile, load_mapping
from .overrides import with_overrides
from .registry import ArchKind, arch_kind, kinds, method_of, register_kind
from .replicate import ReplicatedArch, replicate, split_heads
from .result import AreaItem, EnergyItem, SimResult
from .schema import AcceleratorArch, GpuArch, arch_names, load_arch
from .shapes import ModelShape, load_model_shape, model_shape_names
from .simulator import simulate
from .technology import Technology, area_items, load_technology
from .tiling import TiledSparsity, project
from .traces import load_trace, trace_for, trace_name, trace_names, with_density
from .traffic import Traffic, check_fit, traffic

__all__ = [
    "AcceleratorArch",
    "ArchKind",
    "AreaItem",
    "Binding",
    "ConfigError",
    "EnergyItem",
    "GpuArch",
    "LaneUtilisation",
    "Mapping",
    "ModelShape",
    "ReplicatedArch",
    "SimResult",
    "Technology",
    "Tile",
    "TiledSparsity",
    "Traffic",
    "arch_kind",
    "arch_names",
    "area_items",
    "bind",
    "check_fit",
    "kinds",
    "lane_utilisation",
    "lane_utilisations",
    "load_arch",
    "load_mapping",
    "load_model_shape",
    "load_technology",
    "load_trace",
    "method_of",
    "model_shape_names",
    "peak_formal_ops",
    "project",
    "register_kind",
    "replicate",
    "roofline_seconds",
    "simulate",
    "simulate_gpu",
    "split_heads",
    "trace_for",
    "trace_lane_utilisation",
    "trace_name",
    "trace_names",
    "traffic",
    "with_density",
    "with_overrides",
]
