"""Matplotlib figures (Agg backend: no display needed)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import FixedLocator, FormatStrFormatter, NullFormatter, NullLocator

DENSITY_TICKS = [0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0]


def method_color(i: int) -> Any:
    """Twenty distinct colours (tab20: a dark and a light shade of ten hues), so thirteen methods do not share one."""
    return plt.get_cmap("tab20")((2 * i) % 20 + (i // 10) % 2)


MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h")


def method_style(method: str) -> tuple[Any, str]:
    """The one colour and marker of ``method`` in every figure: its place among the registered methods (sorted), so
    a method keeps its style whichever others a figure shows, and no two registered methods share one (up to 20)."""
    from ..methods.registry import method_names

    names = method_names()
    i = names.index(method) if method in names else len(names) + sum(map(ord, method)) % 20
    return method_color(i), MARKERS[i % len(MARKERS)]


def group_labels(points: dict[str, tuple[float, float]], rel: float = 1e-3) -> dict[tuple[float, float], str]:
    """One label per distinct point: methods at the same point (sofa and star at the same density and perplexity)
    share one label, ``sofa = star``, instead of printing over each other."""
    out: dict[tuple[float, float], list[str]] = {}
    for name, (x, y) in points.items():
        key = next((k for k in out if abs(k[0] - x) <= rel * max(abs(x), 1e-12)
                    and abs(k[1] - y) <= rel * max(abs(y), 1e-12)), (x, y))
        out.setdefault(key, []).append(name)
    return {k: " = ".join(v) for k, v in out.items()}


def _overlaps(box: Any, others: list[Any]) -> bool:
    return any(box.x0 < o.x1 and o.x0 < box.x1 and box.y0 < o.y1 and o.y0 < box.y1 for o in others)


def place_labels(ax: Any, labels: dict[tuple[float, float], str], fontsize: float = 7.5) -> None:
    """Annotate each point with its label at the first of several offsets (right, left, above, below, then
    further out) where the label overlaps no other label, no marker and stays inside the axes; a thin line joins a
    label placed away from its point."""
    from matplotlib.transforms import Bbox

    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    pad = 5 * fig.dpi / 72  # half a marker, in pixels
    markers = [Bbox.from_extents(px - pad, py - pad, px + pad, py + pad)
               for px, py in (ax.transData.transform(xy) for xy in labels)]
    placed: list[Any] = []
    near = [(5, 3), (5, -11), ("L", 3), ("L", -11)]
    far = [(dx, dy) for step in (1, 2, 3, 4, 5) for dx, dy in ((5, 3 + 11 * step), (5, -11 - 11 * step),
                                                               ("L", 3 + 11 * step), ("L", -11 - 11 * step))]
    for (x, y), text in sorted(labels.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        note = ax.annotate(text, (x, y), xytext=(5, 3), textcoords="offset points", fontsize=fontsize,
                           ha="left", va="bottom")
        width = note.get_window_extent(renderer).width * 72 / fig.dpi
        chosen = (5, 3)
        for dx, dy in near + far:
            note.xyann = (-5 - width if dx == "L" else dx, dy)
            box = note.get_window_extent(renderer)
            inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
            if inside and not _overlaps(box, placed + markers):
                chosen = (dx, dy)
                break
        else:
            note.xyann = chosen
        if chosen not in near:  # a leader line from the label's near end to its point
            ax.annotate("", (x, y), xytext=(-5 if chosen[0] == "L" else 5, chosen[1] + 4), textcoords="offset points",
                        arrowprops={"arrowstyle": "-", "lw": 0.5, "color": "0.5", "shrinkA": 0, "shrinkB": 3})
        placed.append(note.get_window_extent(renderer))


def density_axis(ax: Any, values: Sequence[float], label: str) -> None:
    """A log density axis with plain-number ticks (0.05, 0.1, 0.2, ...) that never crowd each other."""
    ax.set_xscale("log")
    lo, hi = min(values), max(values)
    ticks = [t for t in DENSITY_TICKS if lo / 1.6 <= t <= hi * 1.6] or [lo, hi]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlim(lo / 1.35, min(1.0, hi) * 1.35)
    ax.set_xlabel(label)


def plot_perplexity_vs_density(rows: Sequence[dict[str, Any]], path: Path, title: str = "") -> Path:
    """Perplexity against measured density, one panel per text, one line per method, dense as a line."""
    texts = list(dict.fromkeys(r["text"] for r in rows))
    fig, axes = plt.subplots(1, len(texts), figsize=(5.5 * len(texts), 4.2), squeeze=False)
    for ax, text in zip(axes[0], texts, strict=True):
        mine = [r for r in rows if r["text"] == text]
        for r in mine:
            if r["method"] == "dense":
                ax.axhline(r["ppl"], color="black", lw=1, ls="--", label=f"dense ({r['ppl']:.2f})")
        for method in dict.fromkeys(r["method"] for r in mine if r["method"] != "dense"):
            pts = sorted((r["density"], r["ppl"]) for r in mine if r["method"] == method)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=method)
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(FixedLocator([0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0]))
        ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("density (kept / causal pairs)")
        ax.set_ylabel("perplexity")
        ax.set_title(text)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_claims(claims: Sequence[Any], path: Path) -> Path:
    """Paper vs ours for every headline claim (log scale), speed-ups and energy/area efficiencies side by side."""
    labels = [f"{c.paper.upper()}: {c.text}" for c in claims]
    fig, ax = plt.subplots(figsize=(9, 0.42 * len(claims) + 1.2), layout="constrained")
    y = range(len(claims))
    ax.barh([i + 0.2 for i in y], [c.paper_value for c in claims], height=0.4, label="paper", color="#999999")
    ax.barh([i - 0.2 for i in y], [c.ours for c in claims], height=0.4, label="ours (simulated)", color="#1f77b4")
    ax.set_yticks(list(y))
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    log_ticks(ax, "x")
    ax.axvline(1.0, color="black", lw=0.8)
    ax.set_xlabel("ratio (x), log scale; 1 = parity")
    ax.grid(True, axis="x", which="both", alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.07), ncol=2)
    ax.set_title("Headline claims: paper vs sparseattn's simulation")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def plot_energy_breakdown(breakdown: dict[str, dict[str, float]], path: Path, title: str = "",
                          panels: dict[str, tuple[str, str]] | None = None) -> Path:
    """Stacked bars: energy (mJ) of each design by part. ``panels`` (design -> (panel title, bar label), e.g. the
    workload) puts designs of very different sizes on separate axes, one above the other; an axis whose totals span
    more than a decade is logarithmic, so the small designs' bars stay visible."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for name in breakdown:
        panel, label = (panels or {}).get(name, ("", name))
        groups.setdefault(panel, []).append((name, label))
    parts = list(next(iter(breakdown.values())))
    most = max(len(v) for v in groups.values())
    fig, axes = plt.subplots(len(groups), 1, figsize=(0.6 * most + 4.5, 3.4 * len(groups) + 0.6), squeeze=False,
                             layout="constrained")
    for ax, (panel, members) in zip(axes[:, 0], groups.items(), strict=True):
        names, labels = [n for n, _ in members], [lb for _, lb in members]
        totals = [sum(breakdown[n].values()) for n in names]
        bottom = [0.0] * len(names)
        for i, part in enumerate(parts):
            values = [breakdown[n][part] for n in names]
            ax.bar(labels, values, bottom=bottom, label=part, color=f"C{i}")
            bottom = [b + v for b, v in zip(bottom, values, strict=True)]
        positive = [x for x in totals if x > 0]
        if positive and max(positive) > 10 * min(positive):
            ax.set_yscale("log")
            ax.set_ylim(min(positive) / 20, max(positive) * 2)
        ax.set_ylabel("energy (mJ" + (", log scale)" if ax.get_yscale() == "log" else ")"))
        ax.tick_params(axis="x", labelrotation=30, labelsize=8)
        for lbl in ax.get_xticklabels():
            lbl.set_horizontalalignment("right")
        if panel:
            ax.set_title(panel, fontsize=10)
        ax.grid(True, axis="y", which="both", alpha=0.3)
    axes[0, 0].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    if title:
        fig.suptitle(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    if path.suffix == ".png":
        fig.savefig(path.with_suffix(".svg"))
    plt.close(fig)
    return path


# ------------------------------------------------------------------------------------------------ the main job
def save(fig: Any, path: Path) -> Path:
    """Write ``fig`` as ``path`` (PNG) and the same name with ``.svg``; close it (figures made with the
    constrained layout keep their suptitle clear of the axes; others are tightened here)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if fig.get_layout_engine() is None:
        fig.tight_layout()
    fig.savefig(path, dpi=120)
    fig.savefig(path.with_suffix(".svg"))
    plt.close(fig)
    return path


def plot_accuracy_vs_density(rows: dict[str, dict[str, Any]], path: Path, title: str = "") -> Path:
    """Perplexity change vs density: each method (dot) beside the top-k oracle at its density (ring)."""
    fig, ax = plt.subplots(figsize=(8, 5), layout="constrained")
    points, xs, ys = {}, [], []
    for method, r in sorted(rows.items()):
        color, marker = method_style(method)
        x, y = r["density"], 100 * r["ppl_change"]
        ax.scatter([x], [y], color=color, marker=marker, zorder=3, label=method)
        points[method] = (x, y)
        xs.append(x)
        ys.append(y)
        o = r.get("oracle")
        if o:
            ax.scatter([o["density"]], [100 * o["ppl_change"]], facecolors="none", edgecolors=color, zorder=3)
            ax.plot([x, o["density"]], [y, 100 * o["ppl_change"]], color=color, lw=0.7, alpha=0.6)
            xs.append(o["density"])
            ys.append(100 * o["ppl_change"])
    density_axis(ax, xs, "density (kept / valid pairs, measured)")
    ax.set_yscale("symlog", linthresh=1)
    ax.set_ylim(min(-1.0, 3 * min(ys)), max(10.0, 3 * max(ys)))  # room beyond the extreme points (log space)
    ticks = [t for t in (-100, -10, -1, 0, 1, 10, 100, 1000, 10000) if ax.get_ylim()[0] <= t <= ax.get_ylim()[1]]
    ax.yaxis.set_major_locator(FixedLocator(ticks))
    ax.yaxis.set_major_formatter(FormatStrFormatter("%g%%"))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.axhline(0, color="black", lw=0.8)
    ax.set_ylabel("perplexity change vs dense (symmetric log scale)")
    ax.set_title(title or "accuracy cost vs density (ring: the top-k oracle at the same density)")
    ax.grid(True, which="both", alpha=0.3)
    place_labels(ax, group_labels(points))
    return save(fig, path)


def plot_encoder(rows: dict[str, dict[str, Any]], path: Path, title: str = "") -> Path:
    """Embedding cosine to dense and retrieval agreement vs density, one point per method."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6), layout="constrained")
    for ax, key, label in ((axes[0], "cosine", "cosine to the dense embedding (mean)"),
                           (axes[1], "retrieval_agreement", "retrieval agreement (nearest passage kept)")):
        points = {}
        for method, r in sorted(rows.items()):
            color, marker = method_style(method)
            ax.scatter([r["density"]], [r[key]], color=color, marker=marker)
            points[method] = (r["density"], r[key])
        density_axis(ax, [r["density"] for r in rows.values()], "density (measured)")
        lo, hi = min(v[1] for v in points.values()), max(v[1] for v in points.values())
        pad = max(0.02, 0.12 * (hi - lo))
        ax.set_ylim(lo - pad, hi + 2 * pad)
        limits = ax.get_ylim()
        ax.set_yticks([y for y in ax.get_yticks() if y <= 1.0 + 1e-9])  # both are at most 1: no tick above
        ax.set_ylim(*limits)
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
        place_labels(ax, group_labels(points))
    fig.suptitle(title or "encoder (all-MiniLM-L6-v2): sparse attention in every layer")
    return save(fig, path)


def log_ticks(ax: Any, axis: str = "y") -> None:
    """Plain-number labels (0.002, 0.005, 0.01, ...) on a log axis: 1-2-5 per decade when it spans up to three
    decades, one per decade beyond, so the labels neither vanish nor crowd."""
    from matplotlib.ticker import FuncFormatter, LogLocator

    lo, hi = getattr(ax, f"get_{axis}lim")()
    decades = math.log10(hi / lo) if lo > 0 and hi > lo else 1.0
    target = getattr(ax, f"{axis}axis")
    target.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0) if decades <= 3 else (1.0,)))
    target.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    target.set_minor_locator(NullLocator())


def plot_speedups(rows: list[dict[str, Any]], path: Path, title: str = "") -> Path:
    """Speed-up and energy efficiency of each accelerator over each GPU (simulated, log scale), one panel above
    the other so the design names have room."""
    designs = [r["label"] for r in rows]
    gpus = sorted({g for r in rows for g in r["vs"]})
    fig, axes = plt.subplots(2, 1, figsize=(max(8, 0.45 * len(designs) + 3), 8.5), layout="constrained")
    width = 0.8 / max(1, len(gpus))
    for ax, metric, label in ((axes[0], "speedup", "speed-up\n(GPU time / accelerator time)"),
                              (axes[1], "energy", "energy efficiency\n(GPU energy / accelerator energy)")):
        values = [r["vs"][g][metric] for r in rows for g in gpus if g in r["vs"]]
        for j, gpu in enumerate(gpus):
            xs = [i + (j - (len(gpus) - 1) / 2) * width for i in range(len(designs))]
            ax.bar(xs, [r["vs"].get(gpu, {}).get(metric, float("nan")) for r in rows], width=width,
                   label=gpu.upper())
        ax.set_xticks(range(len(designs)))
        ax.set_xticklabels(designs, rotation=40, ha="right", fontsize=8)
        ax.set_yscale("log")
        if values:
            ax.set_ylim(min(min(values), 1.0) / 1.5, max(max(values), 1.0) * 1.5)
        log_ticks(ax)
        ax.axhline(1.0, color="black", lw=0.8)
        ax.set_ylabel(label + ", log scale")
        ax.grid(True, axis="y", which="major", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title or "simulated accelerators vs GPUs running dense attention, same workload")
    return save(fig, path)


def plot_spatial(rows: list[dict[str, Any]], path: Path, title: str = "") -> Path:
    """Throughput (tokens/s) vs sequence length, one line per design."""
    fig, ax = plt.subplots(figsize=(7, 4.2), layout="constrained")
    for design in dict.fromkeys(r["design"] for r in rows):
        pts = sorted((r["seq"], r["tokens_per_s"]) for r in rows if r["design"] == design)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=design)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    from .spatial_figures import seq_ticks

    seq_ticks(ax, sorted({r["seq"] for r in rows}))
    log_ticks(ax)
    ax.set_xlabel("sequence length (tokens)")
    ax.set_ylabel("throughput (tokens/s, simulated)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title or "Spatial-STAR vs baselines")
    return save(fig, path)
