"""Tornado charts of the claims: per paper, one panel per claim, one bar per unstated choice spanning the claim's
value over that choice's range (others at their points), as ours / paper on a log axis; the point as a line, the
paper value at 1 and the ±25% band shaded. The choices are sorted by how much they move the claim."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from ..core.files import write_atomic
from .claim import TOLERANCE


def _bars(claim: Any) -> list[tuple[str, float, float, str, str]]:
    """(choice, low, high, value label at low, at high) as ours / paper, widest first."""
    out = []
    for choice, values in claim.swings.items():
        if choice == "corners" or not values:
            continue
        lo_label = min(values, key=values.get)
        hi_label = max(values, key=values.get)
        out.append((choice.replace("_", " "), values[lo_label] / claim.paper_value,
                    values[hi_label] / claim.paper_value, lo_label, hi_label))
    return sorted(out, key=lambda b: b[2] / b[1], reverse=True)


def _panel(ax: Any, claim: Any) -> None:
    bars = _bars(claim)
    y = list(range(len(bars)))
    point = claim.ours / claim.paper_value
    ax.axvspan(1 - TOLERANCE, 1 + TOLERANCE, color="#2ca02c", alpha=0.12, lw=0)
    ax.axvline(1.0, color="#2ca02c", lw=1.2)
    for i, (_, lo, hi, lo_label, hi_label) in enumerate(bars):
        ax.barh(i, hi - lo if hi > lo else lo * 0.02, left=lo, height=0.55, color="#1f77b4", alpha=0.85)
        if hi > lo * 1.001:
            ax.text(lo / 1.04, i, lo_label, ha="right", va="center", fontsize=7)
            ax.text(hi * 1.04, i, hi_label, ha="left", va="center", fontsize=7)
    ax.axvline(point, color="black", lw=1.0, ls="--")
    ax.set_yticks(y)
    ax.set_yticklabels([b[0] for b in bars], fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    values = [v for b in bars for v in b[1:3]] + [point, 1 - TOLERANCE, 1 + TOLERANCE]
    ax.set_xlim(min(values) / 3.5, max(values) * 3.5)
    ax.set_title(f"{claim.text}: paper {claim.paper_value:g}x, ours {claim.ours:.3g}x "
                 f"[{claim.low:.3g}, {claim.high:.3g}]", fontsize=9, loc="left")
    ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.tick_params(axis="x", labelsize=8)
    ax.grid(True, axis="x", which="major", alpha=0.3)


def plot_tornado(claims: Sequence[Any], path: Path, title: str = "") -> Path:
    """One paper's tornado chart (see the module docstring), written atomically to ``path``."""
    mine = [c for c in claims if c.swings]
    heights = [0.32 * max(1, len(_bars(c))) + 0.75 for c in mine]
    fig, axes = plt.subplots(len(mine), 1, figsize=(9, sum(heights) + 0.8), squeeze=False,
                             gridspec_kw={"height_ratios": heights})
    for ax, c in zip(axes[:, 0], mine, strict=True):
        _panel(ax, c)
    axes[-1, 0].set_xlabel("ours / paper (log); green: the paper value and ±25%; dashed: our point")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    from io import BytesIO

    buf = BytesIO()
    fig.savefig(buf, dpi=130, format="png")
    plt.close(fig)
    write_atomic(path, buf.getvalue())
    return path
