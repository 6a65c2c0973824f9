"""The spatial step: Spatial-STAR throughput vs sequence length against its baselines on an 8x8 mesh
(:mod:`sparseattn.hw.spatial.sweep`). One unit, ``rows``; progress counts its points."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from ...report.render import spatial_section
from ...report.rows import NotRun, RunView, SpatialRow
from .. import progress
from ..config import RunConfig
from ..step import Context, Done, Step
from ..store import ResultStore

SPATIAL_MESH = "spatial-star-8x8"


class Spatial(Step):
    """Spatial-STAR vs its baselines over the configured sequence lengths, on the decoder shape."""

    name: ClassVar[str] = "spatial"
    title: ClassVar[str] = "Spatial-STAR"
    unit_name: ClassVar[str] = "point"
    tables: ClassVar[dict[str, Any]] = {"spatial": list[SpatialRow] | NotRun}

    def enabled(self, cfg: RunConfig) -> bool:
        return cfg.spatial

    def units(self, cfg: RunConfig) -> list[str]:
        return ["rows"]

    def progress_units(self, cfg: RunConfig, store: ResultStore) -> int:
        """Every (design, sequence length) point while the sweep is not stored."""
        from ...hw.spatial.sweep import DESIGNS

        return len(cfg.spatial_seqs) * len(DESIGNS) * super().progress_units(cfg, store)

    def unit_s(self, cfg: RunConfig) -> float:
        return progress.SPATIAL_POINT_S

    def run(self, ctx: Context) -> Iterator[Done]:
        from ...hw.spatial.sweep import DESIGNS, run, sweep_points

        if ctx.done("spatial", "rows"):
            return
        points = sweep_points([SPATIAL_MESH], [ctx.cfg.decoder_shape], ctx.cfg.spatial_seqs, DESIGNS)
        rows, _ = run(points, lambda p: ctx.tick(f"Spatial-STAR: {p.design} at {p.seq:,} tokens on {p.arch}"))
        yield Done("rows", [SpatialRow.model_validate(r) for r in rows])

    def section(self, view: RunView, figs: dict[str, Path]) -> str:
        return spatial_section(view, figs)
