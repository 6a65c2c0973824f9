"""The mapping: how a workload is laid onto an architecture -- tiles per stage, stage overlap, buffering, reuse and
residency -- kept apart from the architecture (what the hardware is) and the workload (the trace and the model
shape), as in Timeloop's specification.

Every architecture file carries its **default mapping** in a ``mapping:`` block; :func:`~sparseattn.hw.simulate`
takes another one (``simulate(arch, trace, shape, mapping=...)``), and a design-space search varies its fields by
dotted path (:func:`~sparseattn.hw.overrides.with_overrides`, ``{"mapping.formal.k": 128}``).

Fields (defaults in brackets):

* ``formal`` -- the query x key tile of the formal stages (Q.K, softmax, P.V) and the granularity of every K/V
  fetch; both multiples of the sparsity profile's base tile (16).
* ``predict`` [the formal tile] -- the tile the predictor scans K with (SOFA section 4: the prediction and formal
  stages may be tiled differently; its "cross-stage coordinated tiling" makes them coincide).
* ``stage_overlap`` [true] -- stages overlap across tiles (a unit's busy time over all stages sets the tile time),
  otherwise they run one after another.
* ``double_buffered`` [true] -- DRAM transfers overlap compute (two copies of each streamed tile on chip).
* ``cross_stage_reuse`` [false] -- the predictor's K read is kept on chip and reused by the formal stage (SOFA/
  STAR). Only possible when the two stages use the same tile: with different tiles the predictor's K read is a
  separate read, and the simulator says so in its notes.
* ``gqa_share`` [true] -- the heads of a KV group fetch their shared K/V tiles once.
* ``kv_residency`` ["auto"] -- ``auto``: a KV head whose K (and V) fit in the K/V buffers is read once per head,
  not once per query tile; ``never``: K/V always stream per query tile.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from ..core.workload import BASE_TILE
from .config import ConfigError, StrictModel, read_yaml, validated


class Tile(StrictModel):
    """A query x key tile in tokens."""

    q: int = Field(gt=0, description="query rows per tile")
    k: int = Field(gt=0, description="keys per tile")

    @field_validator("q", "k")
    @classmethod
    def _multiple_of_base(cls, v: int) -> int:
        if v % BASE_TILE:
            raise ValueError(f"must be a multiple of the profile's base tile {BASE_TILE}")
        return v


class Mapping(StrictModel):
    """Tiles per stage, overlap, buffering, reuse and residency (see the module docstring for each field)."""

    formal: Tile
    predict: Tile | None = Field(default=None, description="prediction-stage tile (default: the formal tile)")
    stage_overlap: bool = Field(default=True, description="stages overlap across tiles (pipelined)")
    double_buffered: bool = Field(default=True, description="DRAM transfers overlap compute")
    cross_stage_reuse: bool = Field(default=False, description="the predictor's K read is reused by formal compute")
    gqa_share: bool = Field(default=True, description="heads of a KV group fetch shared K/V once per tile")
    kv_residency: Literal["auto", "never", "survivors"] = Field(default="auto", description=(
        "keep a KV head on chip when it fits ('auto'); never; or ('survivors', bit-plane traces) the K/V buffer holds "
        "the survivors' INT8 K and V, reused between consecutive query groups, while K streams plane by plane"))
    k_plane_reuse: Literal["head", "group"] = Field(default="head", description=(
        "kv_residency survivors: the K planes a query group fetched serve the following groups (at most INT8 K once "
        "per head, 'head'), or are streamed again for every query group ('group')"))
    x_reuse: Literal["fit", "once"] = Field(default="fit", description=(
        "kv_source generated: the tokens X read once per KV head when they fit the buffers, else per query tile "
        "('fit'), or once per layer ('once': SOFA Table IV's IO power moves Q, O and X once)"))
    projection: Literal["inside", "outside"] = Field(default="inside", description=(
        "kv_source generated: the K/V projection (W_k/W_v reads and the K/V-generation MACs) inside attention's "
        "schedule and energy ('inside'), or charged to the linear layer's own block ('outside': SOFA Table IV's IO "
        "power carries no weights, Table II's 137 GOPs no projection, and a GPU baseline's attention neither)"))

    @property
    def prediction(self) -> Tile:
        """The tile the predictor scans with."""
        return self.predict or self.formal

    @property
    def shares_k_read(self) -> bool:
        """Whether prediction and formal compute share one K read (reuse asked for and the tiles coincide)."""
        return self.cross_stage_reuse and self.prediction == self.formal

    def with_formal(self, q: int | None = None, k: int | None = None) -> Mapping:
        """This mapping with the formal tile's ``q`` and/or ``k`` replaced (validated)."""
        tile = self.formal.model_dump() | {n: v for n, v in (("q", q), ("k", k)) if v is not None}
        return validated(Mapping, self.model_dump() | {"formal": tile}, "mapping")


def load_mapping(name_or_path: str | Path) -> Mapping:
    """A bundled architecture's default mapping by name (``"sofa"``), or a mapping YAML file by path: either a
    file that is a mapping, or an architecture file (its ``mapping:`` block is used)."""
    from .schema import CONFIG_DIR, arch_names

    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        if str(name_or_path) not in arch_names():
            raise ConfigError(f"unknown mapping {str(name_or_path)!r}: give a YAML path or an architecture name "
                              f"({', '.join(arch_names())})")
        path = CONFIG_DIR / f"{name_or_path}.yaml"
    elif not path.exists():
        raise ConfigError(f"mapping file {str(path)!r} does not exist")
    data = read_yaml(path)
    if isinstance(data, dict) and "kind" in data:
        if "mapping" not in data:
            raise ConfigError(f"{path}: architecture of kind {data['kind']!r} has no mapping block")
        return validated(Mapping, data["mapping"], f"{path}: mapping")
    return validated(Mapping, data, str(path))
