"""Spatial-STAR: an R x C mesh of STAR cores with a NoC and edge HBM, its dataflows and orchestration, the
baselines it is compared with, and a packet-level SimPy model that validates the analytical one.

Importing this package registers the architecture kind ``mesh`` (:mod:`sparseattn.hw.registry`), so
``simulate("path/to/mesh.yaml", trace, shape)`` and ``sparseattn simulate --arch <mesh>.yaml`` run it. See
:mod:`.schema` (the YAML), :mod:`.dataflows` (the dataflows), :mod:`.orchestrator` (the hybrid choice),
:mod:`.plan` (the analytical model), :mod:`.baselines`, :mod:`.des` (the discrete-event validation).
"""

from ..registry import ArchKind, register_kind
from .baselines import dense_flash_trace
from .plan import Plan, Stream, estimate
from .result import MeshResult
from .schema import MeshArch, load_mesh, mesh_names, mesh_path
from .simulate import simulate_mesh, topology
from .topology import Topology

register_kind(ArchKind("mesh", MeshArch, simulate_mesh, lambda arch: arch.core.method))

__all__ = ["MeshArch", "MeshResult", "Plan", "Stream", "Topology", "dense_flash_trace", "estimate", "load_mesh",
           "mesh_names", "mesh_path", "simulate_mesh", "topology"]
