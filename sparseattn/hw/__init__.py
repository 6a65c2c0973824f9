"""Accelerator and GPU models that consume traces (DESIGN.md): architectures, technology, tiling, simulator."""

from .gpu import roofline_seconds, simulate_gpu
from .schema import AcceleratorArch, ConfigError, GpuArch, arch_names, load_arch
from .simulator import SimResult, simulate
from .technology import Technology, load_technology
from .tiling import Tiling, check_fit, project, traffic
from .workloads import ModelShape, load_model_shape, load_trace, with_density, workload_names

__all__ = [
    "AcceleratorArch",
    "ConfigError",
    "GpuArch",
    "ModelShape",
    "SimResult",
    "Technology",
    "Tiling",
    "arch_names",
    "check_fit",
    "load_arch",
    "load_model_shape",
    "load_technology",
    "load_trace",
    "project",
    "roofline_seconds",
    "simulate",
    "simulate_gpu",
    "traffic",
    "with_density",
    "workload_names",
]
