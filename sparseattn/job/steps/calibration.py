"""The calibration step (equal accuracy): every method with a density knob calibrated to each loss budget on
``calib_text`` and judged on ``text`` (:mod:`sparseattn.eval.calibrate`), then its accelerator simulated at that
setting -- the comparison PADE's evaluation makes (designs at equal accuracy, HPCA'26 Sec. VI), beside the top-k and
threshold oracles at the same budget; the report's side is :mod:`sparseattn.report.equal_accuracy`.

Units: table ``calibration``, one per method (its rows, one per budget); table ``calibration_hw``, one per
``<arch>@<budget>``, the accelerator simulated on the method's trace at its calibrated setting. Traces are the method
at that setting on the captured Q/K/V of every fifth layer of the decoder over the judged window
(:func:`~sparseattn.eval.hwtraces.trace_at`), carried to the decoder shape as every trace of the job is. The
windows are ``calib_tokens`` long (256 by default, against the accuracy step's 1024), to keep the step inside a few
minutes on 2 cores.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from ...report.equal_accuracy import equal_accuracy_section
from ...report.rows import CalibratedHardwareRow, CalibrationRow, RunView
from ..config import RunConfig
from ..step import Context, Done, Step
from .hardware import accelerators_of, sim_fields


def calibrated_methods(cfg: RunConfig) -> list[str]:
    """The configured methods with a density knob, in the configured order."""
    from ...methods.registry import get_method

    return [m for m in cfg.methods if get_method(m).knobs]


def calibration_unit_s(cfg: RunConfig) -> float:
    """Nominal seconds to calibrate one method (for the job's time-left estimate): the points a method measures on
    average, each one model run over the calibration window, costed at half an accuracy unit (which is a method's
    run and its oracle's) per 1024 tokens."""
    from ...eval.calibrate.runner import expected_points
    from ..progress import DECODER_UNIT_S_PER_1K_TOKENS

    methods = calibrated_methods(cfg)
    if not methods or not cfg.budgets:
        return 0.0
    points = sum(expected_points(m, len(cfg.budgets)) for m in methods) / len(methods)
    return points * DECODER_UNIT_S_PER_1K_TOKENS / 2 * cfg.calib_tokens / 1024


def _calibrated_trace(ctx: Context, method: str, r: CalibrationRow, captured: dict):
    """The method's trace at its calibrated setting (saved under ``<out>/traces``, reused when there)."""
    from ...core.workload import Workload
    from ...eval.hwtraces import trace_at

    path = ctx.out / "traces" / f"calibrated-{method}-{r.budget:g}.json"
    if path.exists():
        return Workload.load(path)
    trace = trace_at(method, dict(r.params), captured, True, f"calibrated to +{r.budget:.0%} on {r.calib_text}")
    path.parent.mkdir(parents=True, exist_ok=True)
    trace.save(path)
    return trace


class Calibration(Step):
    """Calibrate every method (resumable per method and, through the measurement cache, per point), then simulate
    each accelerator at each calibrated setting."""

    name: ClassVar[str] = "calibration"
    title: ClassVar[str] = "Equal accuracy: each method calibrated to a loss budget"
    unit_name: ClassVar[str] = "method"
    tables: ClassVar[dict[str, Any]] = {"calibration": list[CalibrationRow], "calibration_hw": CalibratedHardwareRow}

    def enabled(self, cfg: RunConfig) -> bool:
        return bool(cfg.budgets)

    def units(self, cfg: RunConfig) -> list[str]:
        return calibrated_methods(cfg)

    def unit_s(self, cfg: RunConfig) -> float:
        return calibration_unit_s(cfg)

    def run(self, ctx: Context) -> Iterator[Done]:
        from ...eval.calibrate import calibrate_method, window_scorer

        cfg, lm = ctx.cfg, ctx.model(ctx.cfg.model)
        cache = ctx.out / "calibrate-cache"
        calib = window_scorer(lm, cfg.calib_text, cfg.calib_tokens, cache_dir=cache)
        judge = window_scorer(lm, cfg.text, cfg.calib_tokens, cache_dir=cache)
        for method in calibrated_methods(cfg):
            if ctx.done("calibration", method):
                continue
            ctx.tick(f"calibrate {method} to {', '.join(f'+{b:.0%}' for b in cfg.budgets)} on {calib.label}, judge "
                     f"on {judge.label}")
            rows = calibrate_method(method, calib, judge, list(cfg.budgets))
            yield Done(method, [CalibrationRow.model_validate(r.to_dict()) for r in rows])
        yield from self._hardware(ctx, lm)

    def _hardware(self, ctx: Context, lm) -> Iterator[Done]:
        """Each accelerator simulated on its method's trace at every calibrated setting."""
        from ...eval.fidelity import capture_qkv

        captured = None
        for method, rows in ctx.store.table("calibration").items():
            for arch in accelerators_of(method):
                for r in rows:
                    unit = f"{arch}@{r.budget:g}"
                    if ctx.done("calibration_hw", unit):
                        continue
                    if captured is None:
                        captured = capture_qkv(lm, ctx.cfg.text, ctx.cfg.calib_tokens, list(range(2, lm.num_layers, 5)))
                    ctx.tick(f"simulate {arch} at {method}'s +{r.budget:.0%} setting {r.params}", unit=False)
                    trace = _calibrated_trace(ctx, method, r, captured)
                    fields = sim_fields(arch, trace, ctx.cfg.decoder_shape, ctx.cfg.decoder_seq, "decoder")
                    yield Done(unit, CalibratedHardwareRow.model_validate({**fields, "budget": r.budget}),
                               "calibration_hw")

    def section(self, view: RunView, figs: dict[str, Path]) -> str:
        return equal_accuracy_section(view, figs)
