"""Plots of a study (matplotlib, Agg; written atomically as PNG):

* :func:`pareto_plot` -- every feasible trial on the first two objectives, the Pareto front as a step line, and
  the baseline (the space's own architecture and mapping) as a star; an axis spanning more than 10x is
  logarithmic;
* :func:`convergence_plot` -- the best feasible value of each objective so far against the trial number.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from ..core.files import write_atomic
from .records import pareto_front
from .resolve import Space


def _save(fig: Any, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    return write_atomic(path, buf.getvalue())


def _label(space: Space, name: str) -> str:
    unit = next(o.unit for o, _ in space.objectives if o.name == name)
    return f"{name} ({unit})" if unit else name


def pareto_plot(space: Space, result: Any, path: Path, base: Any = None, title: str | None = None) -> Path:
    """The first two objectives of every feasible trial, the front and the baseline."""
    x_name, y_name = space.objective_names[:2]
    ok = [r for r in result.records if r.ok]
    front = sorted(pareto_front(result.records), key=lambda r: r.objectives[x_name])
    fig, ax = plt.subplots(figsize=(6, 4.2))
    ax.scatter([r.objectives[x_name] for r in ok], [r.objectives[y_name] for r in ok], s=12, c="0.7",
               label=f"feasible trials ({len(ok)})")
    fx, fy = [r.objectives[x_name] for r in front], [r.objectives[y_name] for r in front]
    ax.step(fx, fy, where="post", color="C3", lw=1.2)
    ax.scatter(fx, fy, s=28, c="C3", label=f"Pareto front ({len(front)})", zorder=3)
    if base is not None and base.values is not None:
        ax.scatter([base.values[0]], [base.values[1]], marker="*", s=160, c="C0", label="baseline", zorder=4)
    for axis, values in (("x", [r.objectives[x_name] for r in ok]), ("y", [r.objectives[y_name] for r in ok])):
        if values and min(values) > 0 and max(values) / min(values) > 10:  # wide ranges: the front stays visible
            getattr(ax, f"set_{axis}scale")("log")
    ax.set_xlabel(_label(space, x_name))
    ax.set_ylabel(_label(space, y_name))
    ax.set_title(title or f"{space.file.name}: {result.study_name}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def convergence_plot(space: Space, result: Any, path: Path) -> Path:
    """Best feasible value so far of each objective against the trial number."""
    names = space.objective_names
    fig, axes = plt.subplots(len(names), 1, figsize=(6, 2.4 * len(names)), squeeze=False)
    recs = sorted(result.records, key=lambda r: r.number)
    for ax, name in zip(axes[:, 0], names, strict=True):
        xs, ys, so_far = [], [], float("inf")
        for r in recs:
            if r.ok:
                so_far = min(so_far, r.objectives[name])
            if so_far < float("inf"):
                xs.append(r.number)
                ys.append(so_far)
        ax.plot(xs, ys, drawstyle="steps-post", color="C0")
        ax.set_ylabel(_label(space, name))
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("trial")
    axes[0, 0].set_title(f"{space.file.name}: best so far", fontsize=10)
    return _save(fig, path)
