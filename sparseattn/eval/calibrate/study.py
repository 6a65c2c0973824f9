"""Calibrating several methods of one model: the scorers for a calibration text and a judgement text, and the
rows of every method at every budget (``sparseattn calibrate``, the main job's equal-accuracy step)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ...core.errors import InvalidParameterError
from ...methods.registry import knobs_of
from ...models.loader import LoadedModel
from ..corpora import load_text, text_label
from ..embedding import passages
from .runner import CalibrationRow, OnPoint, calibrate_method
from .scorer import Scorer, scorer_for

CALIB_TEXT, JUDGE_TEXT = "sotu", "moby-dick"  # calibrate on one bundled text, judge on the other
BUDGETS = (0.01, 0.02)  # +1% / +2% perplexity (decoder), cosine 0.99 / 0.98 (encoder)


def window_scorer(lm: LoadedModel, text: str | Path, n_tokens: int, layers: list[int] | None = None,
                  passages_per_text: int = 4, cache_dir: Path | None = None) -> Scorer:
    """The scorer of ``text``: a window of ``n_tokens`` (decoder) or ``passages_per_text`` passages (encoder)."""
    if lm.kind == "encoder":
        items = passages(lm, n_tokens, passages_per_text, [text])
    else:
        items = [lm.encode(load_text(text), n_tokens)]
    return scorer_for(lm, items, text_label(text), layers, cache_dir)


def calibrate_methods(lm: LoadedModel, methods: list[str], calib: Scorer, judge: Scorer,
                      budgets: list[float] | tuple[float, ...] = BUDGETS, tol: float = 1 / 32,
                      on_point: OnPoint | None = None,
                      on_method: Callable[[str, list[CalibrationRow]], None] | None = None) -> list[CalibrationRow]:
    """Rows of every method (each with a density knob) at every budget; ``on_method`` after each method."""
    for m in methods:
        knobs_of(m)  # every method is checked before any model runs
    if not methods:
        raise InvalidParameterError("no methods to calibrate")
    rows: list[CalibrationRow] = []
    for m in methods:
        mine = calibrate_method(m, calib, judge, list(budgets), tol, on_point=on_point)
        rows += mine
        if on_method is not None:
            on_method(m, mine)
    return rows
