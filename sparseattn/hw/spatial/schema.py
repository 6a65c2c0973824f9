"""The mesh architecture (kind ``mesh``): an R x C mesh of single-core accelerators joined by a NoC, with HBM stacks
at the mesh edge, described in YAML like the single-core configs and validated by pydantic.

STAR's abstract says it "deploys STAR onto a multi-core spatial architecture" (Spatial-STAR) but its body is not
available (only its abstract is public, arXiv 2512.20198): the core count, NoC, memory system and partitioning below are
**our design choices**, each a named field with its default and the reason for it in ``configs/*.yaml``.

A file has

* ``core`` -- the single-core configuration every tile runs (a bundled name such as ``star`` or a YAML path): its
  units, buffers (the per-core SRAM), operand formats and default mapping. Its ``dram`` block is *not* used: the
  mesh's HBM replaces it;
* ``mesh`` -- ``rows`` x ``cols`` cores, one router each;
* ``noc`` -- a 2-D mesh with dimension-ordered (XY) routing: bandwidth of one directed link, latency per hop,
  packet size, router and link energy per bit, router area;
* ``hbm`` -- HBM stacks at the mesh edge: per stack bandwidth, attained fraction, latency, energy per bit,
  capacity, PHY area, and where each attaches (``edge``, the first router ``index`` along that edge, ``span``
  routers its channels are wired to);
* ``orchestration`` -- how the mesh runs one attention layer (:mod:`~sparseattn.hw.spatial.dataflows`): the
  dataflow (``auto`` lets the orchestrator pick the hybrid per workload), whether communication overlaps the three
  stages, whether work is balanced with the trace's kept-pair counts, the ring's buffer slots and the width of the
  merged partials;
* ``design`` -- which design the mesh runs (``spatial-star``; the baselines ``dense-flash`` and
  ``stage-isolated``, :mod:`~sparseattn.hw.spatial.baselines`).

A bad file raises :class:`~sparseattn.hw.config.ConfigError` naming the key path (``mesh.rows``,
``hbm.stacks.1.index``, ``core``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from ..config import ConfigError, StrictModel, find_file
from ..schema import AcceleratorArch, Published, load_arch

CONFIG_DIR = Path(__file__).parent / "configs"
Edge = Literal["north", "south", "east", "west"]
DataflowName = Literal["auto", "kv_shard", "q_ring", "head"]
Design = Literal["spatial-star", "dense-flash", "stage-isolated"]


class MeshShape(StrictModel):
    """``rows`` x ``cols`` cores, one router each."""

    rows: int = Field(gt=0, le=64, description="mesh rows (at least 1)")
    cols: int = Field(gt=0, le=64, description="mesh columns (at least 1)")


class Noc(StrictModel):
    """A 2-D mesh NoC with XY routing; every number is an assumption stated in the config file."""

    link_gbps: float = Field(gt=0, le=1e5, description="bandwidth of one directed link, GB/s")
    hop_latency_cycles: float = Field(default=2.0, ge=0, le=1e4, description="router + link latency per hop, cycles")
    packet_bytes: int = Field(default=512, ge=16, le=1 << 20, description="payload per packet (DES granularity)")
    router_pj_per_bit: float = Field(gt=0, le=100, description="energy of one bit through one router")
    link_pj_per_bit: float = Field(gt=0, le=100, description="energy of one bit over one mesh link (one hop)")
    router_area_mm2: float = Field(ge=0, le=100, description="area of one router at the core's node")


class HbmStack(StrictModel):
    """One HBM stack at the mesh edge, wired to ``span`` consecutive edge routers from ``index`` on."""

    edge: Edge
    index: int = Field(ge=0, le=4096, description="first router along the edge (row for west/east, column else)")
    span: int = Field(default=1, ge=1, le=64, description="edge routers its channels are wired to")


class Hbm(StrictModel):
    """Off-chip memory: HBM stacks at the mesh edge."""

    kind: Literal["hbm2", "hbm2e", "hbm3"] = "hbm3"
    gbps_per_stack: float = Field(gt=0, le=1e5, description="peak bandwidth of one stack, GB/s")
    efficiency: float = Field(default=0.8, gt=0, le=1, description="attained fraction of peak bandwidth")
    latency_ns: float = Field(default=100.0, ge=0, le=1e6, description="first-access latency")
    pj_per_bit: float | None = Field(default=None, gt=0, le=1000, description="overrides the technology table")
    capacity_gb: float = Field(default=16.0, gt=0, le=1e4, description="capacity of one stack, GB")
    phy_area_mm2: float = Field(default=0.0, ge=0, le=1e3, description="on-die PHY + controller area per stack")
    placement: Literal["nearest", "interleave"] = Field(
        default="nearest", description="data a core reads lives in its nearest stacks, or is interleaved over all")
    stacks: list[HbmStack] = Field(min_length=1, description="at least one stack")


class Orchestration(StrictModel):
    """How the mesh runs a layer (see :mod:`~sparseattn.hw.spatial.dataflows`)."""

    dataflow: DataflowName = Field(default="auto", description="auto: the orchestrator picks regions x dataflow")
    regions: int | None = Field(default=None, ge=1, le=4096, description="force this many head-parallel regions")
    overlap: bool = Field(default=True, description="communication overlaps the three stages (double buffered)")
    balance: bool = Field(default=True, description="balance work with the trace's kept-pair counts")
    ring_slots: int = Field(default=2, ge=1, le=64, description="K/V chunk buffers per core on the ring")
    partial_bits: int = Field(default=32, ge=8, le=64, description="bits of the merged m and l (o is q_bits)")
    gather: Literal["tile", "row"] = Field(
        default="tile", description="stage-isolated baseline: K/V gathered per query tile (union) or per row")


class MeshArch(StrictModel):
    """An R x C mesh of single-core accelerators (see the module docstring)."""

    kind: Literal["mesh"] = "mesh"
    name: str
    description: str = ""
    source: str = ""
    core: AcceleratorArch = Field(description="the single-core config of every tile (bundled name or YAML path)")
    mesh: MeshShape
    noc: Noc
    hbm: Hbm
    orchestration: Orchestration = Orchestration()
    design: Design = "spatial-star"
    published: Published = Published()

    @field_validator("core", mode="before")
    @classmethod
    def _load_core(cls, value: Any) -> Any:
        if isinstance(value, str | Path):
            arch = load_arch(_core_path(value))
            if not isinstance(arch, AcceleratorArch):
                raise ValueError(f"{value!r} is of kind {getattr(arch, 'kind', '?')!r}; a mesh core must be an "
                                 "accelerator config")
            return arch
        return value

    @model_validator(mode="after")
    def _stacks_reachable(self) -> MeshArch:
        for i, s in enumerate(self.hbm.stacks):
            length = self.mesh.rows if s.edge in ("west", "east") else self.mesh.cols
            if s.index + s.span > length:
                raise ValueError(
                    f"hbm.stacks.{i}: a stack on the {s.edge} edge at index {s.index} with span {s.span} needs "
                    f"routers {s.index}..{s.index + s.span - 1}, but that edge of the {self.mesh.rows}x"
                    f"{self.mesh.cols} mesh has routers 0..{length - 1}: the stack is unreachable")
        return self

    @property
    def cores(self) -> int:
        return self.mesh.rows * self.mesh.cols

    @property
    def method(self) -> str:
        return self.core.method

    @property
    def mapping(self):
        """The core's default mapping (``simulate --q-tile`` overrides it)."""
        return self.core.mapping

    @property
    def clock_mhz(self) -> float:
        return self.core.clock_mhz

    @property
    def normalised(self) -> str:
        return self.core.normalised


def _core_path(value: str | Path) -> str | Path:
    """A bundled single-core name as is; a relative path that does not exist from here is tried beside the bundled
    mesh configs."""
    path = Path(value)
    if path.suffix in (".yaml", ".yml") and not path.exists() and (CONFIG_DIR / path).exists():
        return CONFIG_DIR / path
    return value


def mesh_names() -> list[str]:
    """Mesh configurations bundled in ``spatial/configs``."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def mesh_path(name_or_path: str | Path) -> Path:
    """A bundled mesh config by name (``spatial-star-8x8``) or any YAML path."""
    return find_file(name_or_path, CONFIG_DIR, ".yaml", "mesh architecture", mesh_names())


def load_mesh(name_or_path: str | Path) -> MeshArch:
    """A mesh architecture by bundled name or path, validated (errors name the key path)."""
    arch = load_arch(mesh_path(name_or_path))
    if not isinstance(arch, MeshArch):
        raise ConfigError(f"{name_or_path}: kind {getattr(arch, 'kind', '?')!r} is not a mesh")
    return arch
