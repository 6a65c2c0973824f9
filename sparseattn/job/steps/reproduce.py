"""The reproduce step: the papers' headline claims, paper vs ours, and the simulator against the designs' own
published figures (:mod:`sparseattn.report.reproduce`), with JSON, markdown and figures under ``<out>/reproduce/``.
One unit, ``claims``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from ...report.render import reproduce_section
from ...report.rows import ReproduceRow, RunView
from .. import progress
from ..config import RunConfig
from ..step import Context, Done, Step


class Reproduce(Step):
    """Recompute every headline claim from the bundled traces and write its outputs; the rows are the claims and
    checks computed here (the files written are for readers, never read back)."""

    name: ClassVar[str] = "reproduce"
    title: ClassVar[str] = "The papers' headline claims"
    unit_name: ClassVar[str] = "claim set"
    tables: ClassVar[dict[str, Any]] = {"reproduce": ReproduceRow}

    def enabled(self, cfg: RunConfig) -> bool:
        return cfg.reproduce

    def units(self, cfg: RunConfig) -> list[str]:
        return ["claims"]

    def unit_s(self, cfg: RunConfig) -> float:
        return progress.REPRODUCE_S

    def run(self, ctx: Context) -> Iterator[Done]:
        from ...report.reproduce import claims_json, reproduce, write_outputs
        from ...report.validation import validation

        if ctx.done("reproduce", "claims"):
            return
        ctx.tick("the papers' headline claims: simulating every design")
        start = time.perf_counter()
        claims = reproduce()
        checks = validation()
        write_outputs(claims, ctx.out / "reproduce", time.perf_counter() - start, checks)
        data = claims_json(claims, checks=checks)
        yield Done("claims", ReproduceRow(claims=data["claims"], validation=data["validation"]))

    def section(self, view: RunView, figs: dict[str, Path]) -> str:
        return reproduce_section(view, figs)
