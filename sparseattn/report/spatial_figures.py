"""Figures of a mesh sweep (matplotlib, written to files): throughput against sequence length (ours and the
baselines), a per-core utilisation heatmap, an energy breakdown by component kind, and scaling with the cores.
They only read rows and results (:mod:`sparseattn.hw.spatial.sweep`); the hardware model draws nothing."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from ..hw.spatial.result import MeshResult
from .figures import log_ticks

STYLE = {"spatial-star": ("C0", "o", "Spatial-STAR (ours)"), "dense-flash": ("C1", "s", "dense FlashAttention mesh"),
         "stage-isolated": ("C3", "^", "STAR cores, stage-isolated")}


def throughput(rows: list[dict], path: Path) -> Path:
    """Tokens/s against sequence length, one panel per (arch, shape)."""
    panels = sorted({(r["arch"], r["shape"]) for r in rows if r["study"] == "sweep"})
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), squeeze=False)
    for ax, (arch, shape) in zip(axes[0], panels, strict=True):
        for design, (color, marker, label) in STYLE.items():
            pts = sorted((r["seq"], r["tokens_per_s"]) for r in rows if r["study"] == "sweep" and r["arch"] == arch
                         and r["shape"] == shape and r["design"] == design)
            if pts:
                ax.plot(*zip(*pts, strict=True), marker=marker, color=color, label=label)
        ax.set(xscale="log", yscale="log", xlabel="sequence length (tokens)", ylabel="prefill throughput (tokens/s)",
               title=f"{arch}\n{shape}")
        seq_ticks(ax, sorted({r["seq"] for r in rows if r["study"] == "sweep"}))
        log_ticks(ax)
        ax.grid(True, which="major", alpha=0.3)
    axes[0][0].legend(fontsize=8)
    return _save(fig, path)


def utilisation(result: MeshResult, path: Path) -> Path:
    """Per-core utilisation heatmap with the busiest links drawn over it."""
    grid = np.array(result.core_utilisation)
    fig, ax = plt.subplots(figsize=(4.6, 4.0))
    im = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis")
    for (r, c), u in np.ndenumerate(grid):
        ax.text(c, r, f"{u:.2f}", ha="center", va="center", fontsize=6.5, color="w" if u < 0.6 else "k")
    fig.colorbar(im, ax=ax, label="core utilisation (busy / run)")
    links = [link for link in result.links if not link["channel"]]
    top = sorted(links, key=lambda link: -link["utilisation"])[: max(4, len(links) // 8)]
    for link in top:
        (r0, c0), (r1, c1) = (tuple(map(int, link[k].split(","))) for k in ("src", "dst"))
        ax.annotate("", xy=(c1, r1), xytext=(c0, r0),
                    arrowprops={"arrowstyle": "->", "color": "r", "alpha": min(1.0, 0.3 + link["utilisation"]),
                                "shrinkA": 10, "shrinkB": 10})  # stop short of the cells' numbers
    s = result.shape
    ax.set_title(f"{result.arch}: {result.design}\n{s['q_len']} tokens, {result.dataflow}\n"
                 f"red: busiest links (max {result.max_link_utilisation:.2f})", fontsize=8)
    ax.set_xticks(range(grid.shape[1]))
    ax.set_yticks(range(grid.shape[0]))
    return _save(fig, path)


def energy(results: dict[str, MeshResult], path: Path) -> Path:
    """Energy per token by component kind (compute, SRAM, NoC, HBM, leakage), one bar per design."""
    kinds = ("compute", "sram", "noc", "dram", "leakage")
    names = {"dram": "HBM"}
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    bottom = np.zeros(len(results))
    labels = [STYLE.get(d, (None, None, d))[2] for d in results]
    for kind in kinds:
        vals = np.array([r.energy_by("kind").get(kind, 0.0) * 1e-12 / (r.shape["q_len"] * r.shape["batch"])
                         for r in results.values()]) * 1e3
        ax.bar(labels, vals, bottom=bottom, label=names.get(kind, kind))
        bottom += vals
    ax.set_ylabel("energy per token (mJ)")
    any_result = next(iter(results.values()))
    ax.set_title(f"{any_result.arch}, {any_result.shape['q_len']} tokens", fontsize=9)
    ax.tick_params(axis="x", labelsize=7)
    ax.legend(fontsize=8)
    return _save(fig, path)


def scaling(rows: list[dict], path: Path) -> Path:
    """Strong and weak scaling: throughput against cores."""
    fig, axes = plt.subplots(1, 2, figsize=(8.4, 3.6))
    for ax, study in zip(axes, ("strong", "weak"), strict=True):
        for design, (color, marker, label) in STYLE.items():
            pts = sorted((r["cores"], r["tokens_per_s"], r["seq"]) for r in rows
                         if r["study"] == study and r["design"] == design)
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=marker, color=color, label=label)
        cores = sorted({r["cores"] for r in rows if r["study"] == study})
        ax.set(yscale="log", ylabel="tokens/s", xlabel="cores",
               title=f"{study} scaling" + (" (fixed sequence)" if study == "strong" else " (seq ~ sqrt(cores))"))
        ax.set_xscale("log", base=2)
        ax.set_xticks(cores, [str(c) for c in cores])
        ax.minorticks_off()
        log_ticks(ax)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    return _save(fig, path)


def seq_ticks(ax, seqs: list[int]) -> None:
    """The swept sequence lengths as the x ticks, written 32k, 128k, 1M (no crowded powers of ten)."""
    from matplotlib.ticker import FixedLocator, NullLocator

    def name(n: int) -> str:
        return f"{n / 2**20:g}M" if n >= 2**20 else f"{n / 2**10:g}k" if n >= 2**10 else str(n)

    ax.xaxis.set_major_locator(FixedLocator(seqs))
    ax.set_xticklabels([name(n) for n in seqs])
    ax.xaxis.set_minor_locator(NullLocator())


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path
