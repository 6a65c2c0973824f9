"""The report's side of the main job's equal-accuracy step (the step is :mod:`sparseattn.job.steps.calibration`):
every method calibrated to each loss budget on one text and judged on another, its accelerator simulated at that
setting -- the comparison PADE's evaluation makes (designs at equal accuracy, HPCA'26 Sec. VI) -- beside the top-k
and threshold oracles at the same budget, as a table and a figure.

What is approximated, to keep the step inside a few minutes on 2 cores: the calibration and judgement windows are
``calib_tokens`` long (256 by default, against the accuracy step's 1024), so the calibrated densities are those of
a 256-token context and so are the traces simulated (:class:`EqualAccuracyRow` carries the window).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .calibration import setting_label
from .html import TAG, figure, table
from .rows import RunView

ORACLES = ("topk", "threshold")


@dataclass(frozen=True)
class EqualAccuracyRow:
    """One design at one budget: its calibrated (judged) density and loss, and its accelerator's simulated cost.
    Hardware fields are ``None`` for a method without an accelerator (the oracles)."""

    method: str
    budget: float
    reached: bool
    params: dict[str, Any]
    density: float  # judged text
    loss: float  # judged text (relative perplexity increase)
    calib_density: float
    calib_loss: float
    tokens: int
    arch: str | None = None
    latency_ms: float | None = None
    energy_mj: float | None = None
    topk_density: float | None = None  # the oracles calibrated to the same budget (judged densities)
    threshold_density: float | None = None
    # where the method spends its budget: the layer whose judged density differs most from the threshold oracle's
    # at the same budget, with both densities there
    layer: int | None = None
    layer_density: float | None = None
    layer_oracle_density: float | None = None
    measurable: bool = True  # False: the knob moved no density on the window; nothing was calibrated

    @property
    def edp(self) -> float | None:
        """Energy-delay product, mJ x ms."""
        return None if self.latency_ms is None or self.energy_mj is None else self.latency_ms * self.energy_mj

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "edp": self.edp}


def _layer_gap(mine: dict[int, float], oracle: dict[int, float] | None) -> tuple[int | None, float | None,
                                                                                 float | None]:
    """The layer where ``mine`` (layer -> density) differs most from ``oracle``'s, with both densities."""
    common = sorted(set(mine) & set(oracle or {}), key=int)
    if not common:
        return None, None, None
    worst = max(common, key=lambda k: abs(mine[k] - oracle[k]))
    return int(worst), mine[worst], oracle[worst]


def equal_accuracy_rows(view: RunView) -> list[EqualAccuracyRow]:
    """The equal-accuracy table, one row per (design or oracle, budget): what the report (and its summary) reads."""
    cal, hw = view.calibration(), view.calibration_hw()
    oracle = {(m, r.budget): r.judge_density for m in ORACLES for r in cal.get(m, [])}
    layers = {r.budget: r.judge_layer_density for r in cal.get("threshold", [])}
    out = []
    for method, rows in cal.items():
        for r in rows:
            layer, mine, theirs = _layer_gap(r.judge_layer_density, layers.get(r.budget))
            sims = [h for h in hw.values() if h.method == method and h.budget == r.budget] or [None]
            for h in sims:
                out.append(EqualAccuracyRow(
                    method=method, budget=r.budget, reached=r.reached, params=dict(r.params),
                    density=r.judge_density, loss=r.judge_loss, calib_density=r.calib_density,
                    calib_loss=r.calib_loss, tokens=view.config.calib_tokens,
                    arch=h.arch if h else None, latency_ms=h.latency_ms if h else None,
                    energy_mj=h.energy_mj if h else None, topk_density=oracle.get(("topk", r.budget)),
                    threshold_density=oracle.get(("threshold", r.budget)), layer=layer, layer_density=mine,
                    layer_oracle_density=theirs, measurable=r.measurable))
    return out


def _f(v: float | None, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def equal_accuracy_section(view: RunView, figs: dict[str, Path]) -> str:
    """The equal-accuracy table and the density-vs-budget figure."""
    rows = equal_accuracy_rows(view)
    if not rows:
        return "<p>not run</p>"
    meas, sim = TAG["measured"], TAG["simulated"]
    first = view.calibration()[rows[0].method][0]
    headers = ["design", "budget", "setting", f"density {meas}", f"ppl change (judged) {meas}",
               f"ppl change (calibration) {meas}", f"top-k oracle density {meas}", f"threshold oracle density {meas}",
               f"latency ms {sim}", f"energy mJ {sim}", f"EDP mJ·ms {sim}",
               f"layer most unlike the threshold oracle (its density / oracle's) {meas}"]
    cells = [[r.method + (f" ({r.arch})" if r.arch else ""), f"+{r.budget:.0%}",
              setting_label(r.params, r.reached, r.measurable),
              _f(r.density, ".3f"), _f(100 * r.loss, "+.2f") + "%", _f(100 * r.calib_loss, "+.2f") + "%",
              _f(r.topk_density, ".3f"), _f(r.threshold_density, ".3f"), _f(r.latency_ms, ".3g"),
              _f(r.energy_mj, ".3g"), _f(r.edp, ".3g"),
              "-" if r.layer is None else f"{r.layer}: {r.layer_density:.3f} / {r.layer_oracle_density:.3f}"]
             for r in rows]
    note = (f"<p class='note'>Each method's density knob set to the sparsest value within the budget on "
            f"{first.calib_text}, then judged on {first.judge_text} ({rows[0].tokens}-token windows, every layer "
            "sparse; densities and losses shown are the judged ones). Unreached: no setting in the knob's range meets "
            "the budget; the closest is shown. Not measurable: the knob leaves the density unchanged on this window "
            "(a block-sparse method whose blocks cover it), so nothing was calibrated. Hardware: the accelerator on "
            "the method's trace at that setting, at "
            f"{view.config.decoder_shape} @ {view.config.decoder_seq}.</p>")
    body = note + table(headers, cells)
    if "calibrate" in figs:
        body += figure(figs["calibrate"], "calibrated density vs loss budget (judged text)")
    return body


def plot_density_vs_budget(view: RunView, path: Path) -> Path | None:
    """Judged density at each budget per method, each in its own colour and marker (:func:`~.figures.method_style`;
    hollow marker: budget not reached; a method whose knob moves no density on the window is named, not drawn)."""
    from matplotlib.ticker import FixedLocator, FormatStrFormatter, NullFormatter

    from .figures import DENSITY_TICKS, method_style, plt, save

    cal = view.calibration()
    if not cal:
        return None
    fig, ax = plt.subplots(figsize=(8.5, 4.8), layout="constrained")
    budgets, flat = set(), []
    for method, rows in sorted(cal.items()):
        rows = sorted((r for r in rows if r.measurable), key=lambda r: r.budget)
        if not rows:  # nothing calibrated on this window: left out of the plot, named under it
            flat.append(method)
            continue
        color, marker = method_style(method)
        xs, ys = [100 * r.budget for r in rows], [r.judge_density for r in rows]
        budgets.update(xs)
        ax.plot(xs, ys, "--" if method in ORACLES else "-", color=color, label=method, lw=1.2, marker=marker,
                markerfacecolor="none", markersize=7)
        for r, x, y in zip(rows, xs, ys, strict=True):  # filled: calibrated; hollow: unreached
            if r.reached:
                ax.scatter([x], [y], color=color, marker=marker, s=40, zorder=3)
    ax.set_xticks(sorted(budgets))
    ax.set_xmargin(0.08)
    if flat:
        ax.set_xlabel(f"loss budget (perplexity increase, %); not measurable on this window: {', '.join(flat)}")
    else:
        ax.set_xlabel("loss budget (perplexity increase, %)")
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(FixedLocator(DENSITY_TICKS))
    ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_ylim(top=1.25)  # room above density 1 for its markers
    ax.set_ylabel("density at the calibrated setting (judged)")
    ax.set_title("equal accuracy: how sparse each method is within the budget (dashed: oracles)")
    ax.legend(fontsize=7, ncol=2, loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.grid(True, which="both", alpha=0.3)
    return save(fig, path)
