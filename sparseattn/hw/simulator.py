"""``simulate``: the front door of every hardware model.

``simulate(arch, trace, shape=None, mapping=None)`` takes the three separate inputs of a Timeloop-style
specification -- the **architecture** (an object, a bundled name such as ``"pade"`` or a YAML path), the
**workload** (a :class:`~sparseattn.core.workload.Workload` trace -- object, bundled name or JSON path -- carried to
a model ``shape``, default its own) and the **mapping** (a :class:`~sparseattn.hw.mapping.Mapping` or a YAML path;
default the architecture's own) -- and dispatches on the architecture's kind through the registry
(:mod:`~sparseattn.hw.registry`): ``accelerator`` (:mod:`~sparseattn.hw.accelerator`, the staged pipeline),
``gpu`` (:mod:`~sparseattn.hw.gpu`, a dense roofline whatever the trace), ``replicated``
(:mod:`~sparseattn.hw.replicate`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..core.invariants import ResultInvariantError, check_sim_result, check_size
from ..core.shape import Shape
from ..core.workload import Workload
from .config import ConfigError
from .mapping import Mapping, load_mapping
from .registry import arch_kind
from .result import SimResult
from .schema import load_arch
from .technology import Technology
from .traces import load_trace


def _resolve(arch: Any, trace: Any, mapping: Any) -> tuple[Any, Workload, Mapping | None]:
    if isinstance(arch, str | Path):
        arch = load_arch(arch)
    if isinstance(trace, str | Path):
        trace = load_trace(trace)
    if isinstance(mapping, str | Path):
        mapping = load_mapping(mapping)
    if not isinstance(trace, Workload):
        raise ConfigError(f"trace must be a Workload, a bundled trace name or a JSON path, got {type(trace).__name__}")
    if not hasattr(arch, "kind"):
        raise ConfigError(f"arch must be an architecture, a bundled name or a YAML path, got {type(arch).__name__}")
    if mapping is not None and not isinstance(mapping, Mapping):
        raise ConfigError(f"mapping must be a Mapping or a YAML path, got {type(mapping).__name__}")
    return arch, trace, mapping


def simulate(arch: Any, trace: Workload | str | Path, shape: Shape | None = None,
             mapping: Mapping | str | Path | None = None, tech: Technology | None = None) -> SimResult:
    """Simulate ``trace`` (carried to ``shape`` when given) on ``arch`` under ``mapping``; see the module docstring."""
    arch, trace, mapping = _resolve(arch, trace, mapping)
    target = shape if shape is not None else trace.shape
    check_size(max(target.q_len, target.k_len), target.batch, "seq", "batch")
    result = arch_kind(arch).simulate(arch, trace, shape, mapping, tech)
    try:
        return check_sim_result(result)
    except ResultInvariantError as err:
        raise ResultInvariantError(f"{err}; the trace's largest op count is {_largest_count(trace)}") from None


def _largest_count(trace: Workload) -> str:
    """The trace's largest op count, named (what an out-of-range result most often comes from)."""
    key, count = max(trace.ops.items(), key=lambda kv: kv[1], default=(None, 0.0))
    return "none" if key is None else f"{key.stage}/{key.op} at {key.bits} bits: {count:.3g}"
