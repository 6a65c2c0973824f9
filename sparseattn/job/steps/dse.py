"""The dse step: a small Bayesian (TPE) search of STAR's cross-stage tiling on the decoder shape, latency and DRAM
traffic (:mod:`sparseattn.dse`); the study is kept in ``<out>/dse/study.sqlite``, so an interrupted search resumes.
One unit, ``summary``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from ...report.render import dse_section
from ...report.rows import DseRow, RunView
from .. import progress
from ..config import RunConfig
from ..step import Context, Done, Step

SUMMARY_FIELDS = ("space", "objectives", "parameters", "grid_size", "trials", "feasible", "baseline", "best",
                  "wall_s")


class Dse(Step):
    """Search STAR's tiling with ``dse_trials`` TPE trials and keep the summary (default mapping, best trials)."""

    name: ClassVar[str] = "dse"
    title: ClassVar[str] = "Design-space search"
    unit_name: ClassVar[str] = "search"
    tables: ClassVar[dict[str, Any]] = {"dse": DseRow}

    def enabled(self, cfg: RunConfig) -> bool:
        return cfg.dse_trials > 0

    def units(self, cfg: RunConfig) -> list[str]:
        return ["summary"]

    def unit_s(self, cfg: RunConfig) -> float:
        return progress.DSE_TRIAL_S * cfg.dse_trials

    def run(self, ctx: Context) -> Iterator[Done]:
        from ...dse import StudyConfig, load_space, run_study, write_outputs
        from ...dse.outputs import baseline, summary

        if ctx.done("dse", "summary"):
            return
        ctx.tick(f"design-space search: STAR tiling, {ctx.cfg.dse_trials} TPE trials")
        out = ctx.out / "dse"
        out.mkdir(parents=True, exist_ok=True)
        space = load_space("star-tiling", seq=ctx.cfg.decoder_seq)
        res = run_study(space, StudyConfig(sampler="tpe", n_trials=ctx.cfg.dse_trials, seed=0, out=out, workers=1,
                                           storage=f"sqlite:///{out / 'study.sqlite'}", progress=False))
        write_outputs(space, res, out)
        data = summary(space, res, baseline(space))
        yield Done("summary", DseRow.model_validate({k: data[k] for k in SUMMARY_FIELDS}))

    def section(self, view: RunView, figs: dict[str, Path]) -> str:
        return dse_section(view, figs)
