"""Spatial-STAR: an R x C mesh of STAR cores with a NoC and edge HBM, its dataflows and orchestration, the
baselines it is compared with, and a packet-level SimPy model that validates the analytical one.

Importing this package registers the architecture kind ``mesh`` (:mod:`sparseattn.hw.registry`), so
``simulate("path/to/mesh.yaml", trace, shape)`` and ``sparseattn simulate --arch <mesh>.yaml`` run it. See
:mod:`.schema` (the YAML), :mod:`.dataflows` (the dataflows), :mod:`.orchestrator` (the hybrid choice),
:mod:`.plan` (the analytical model), :mod:`.baselines`, :mod:`.des` (the discrete-event validation).
"""

from ..registry import ArchKind, Capabilities, register_kind
from ..technology import Technology
from ..traffic import check_fit
from .baselines import dense_flash_trace
from .energy import mesh_area
from .plan import Plan, Stream, estimate
from .result import MeshResult
from .schema import MeshArch, load_mesh, mesh_names, mesh_path
from .simulate import simulate_mesh, topology
from .topology import Topology


def _area_mm2(arch: MeshArch, tech: Technology) -> float:
    return sum(a.mm2 for a in mesh_area(arch, tech))


# every core runs the core's method under the core's mapping; the SRAM total is the cores' buffers (the routers
# have none in this model); a mesh is not normalised itself (its core is an accelerator config)
CAPABILITIES = Capabilities(
    method=lambda arch: arch.core.method,
    runs_trace=True,
    mapping=lambda arch: arch.core.mapping,
    check_fit=lambda arch, shape, mapping=None: check_fit(arch.core, shape, mapping or arch.core.mapping),
    area_mm2=_area_mm2,
    sram_kb=lambda arch: arch.cores * arch.core.sram_kb,
    normalisable=False,
)

register_kind(ArchKind("mesh", MeshArch, simulate_mesh, CAPABILITIES, noun="mesh"))

__all__ = ["MeshArch", "MeshResult", "Plan", "Stream", "Topology", "dense_flash_trace", "estimate", "load_mesh",
           "mesh_names", "mesh_path", "simulate_mesh", "topology"]
