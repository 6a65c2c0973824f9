"""Matplotlib figures (Agg backend: no display needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import FixedLocator, FormatStrFormatter, NullFormatter


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
    fig, ax = plt.subplots(figsize=(9, 0.42 * len(claims) + 1.2))
    y = range(len(claims))
    ax.barh([i + 0.2 for i in y], [c.paper_value for c in claims], height=0.4, label="paper", color="#999999")
    ax.barh([i - 0.2 for i in y], [c.ours for c in claims], height=0.4, label="ours (simulated)", color="#1f77b4")
    ax.set_yticks(list(y))
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.axvline(1.0, color="black", lw=0.8)
    ax.set_xlabel("ratio (x), log scale; 1 = parity")
    ax.grid(True, axis="x", which="both", alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.07), ncol=2)
    ax.set_title("Headline claims: paper vs sparseattn's simulation")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def plot_energy_breakdown(breakdown: dict[str, dict[str, float]], path: Path, title: str = "") -> Path:
    """Stacked bars: energy (mJ) of each design by part."""
    names = list(breakdown)
    parts = list(next(iter(breakdown.values())))
    fig, ax = plt.subplots(figsize=(1.0 * len(names) + 3, 4.2))
    bottom = [0.0] * len(names)
    for part in parts:
        values = [breakdown[n][part] for n in names]
        ax.bar(names, values, bottom=bottom, label=part)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set_ylabel("energy (mJ)")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


# ------------------------------------------------------------------------------------------------ the main job
def save(fig: Any, path: Path) -> Path:
    """Write ``fig`` as ``path`` (PNG) and the same name with ``.svg``; close it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    fig.savefig(path.with_suffix(".svg"))
    plt.close(fig)
    return path


def plot_accuracy_vs_density(rows: dict[str, dict[str, Any]], path: Path, title: str = "") -> Path:
    """Perplexity change vs density: each method (dot) beside the top-k oracle at its density (ring)."""
    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    for i, (method, r) in enumerate(sorted(rows.items())):
        color = f"C{i % 10}"
        x, y = r["density"], 100 * r["ppl_change"]
        ax.scatter([x], [y], color=color, zorder=3, label=method)
        ax.annotate(method, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
        o = r.get("oracle")
        if o:
            ax.scatter([o["density"]], [100 * o["ppl_change"]], facecolors="none", edgecolors=color, zorder=3)
            ax.plot([x, o["density"]], [y, 100 * o["ppl_change"]], color=color, lw=0.7, alpha=0.6)
    ax.set_xscale("log")
    ax.set_yscale("symlog", linthresh=1)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xlabel("density (kept / valid pairs, measured)")
    ax.set_ylabel("perplexity change vs dense (%)")
    ax.set_title(title or "accuracy cost vs density (ring: top-k oracle at the same density)")
    ax.grid(True, which="both", alpha=0.3)
    return save(fig, path)


def plot_encoder(rows: dict[str, dict[str, Any]], path: Path, title: str = "") -> Path:
    """Embedding cosine to dense and retrieval agreement vs density, one point per method."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, label in ((axes[0], "cosine", "cosine to the dense embedding (mean)"),
                           (axes[1], "retrieval_agreement", "retrieval agreement (nearest passage kept)")):
        for i, (method, r) in enumerate(sorted(rows.items())):
            ax.scatter([r["density"]], [r[key]], color=f"C{i % 10}")
            ax.annotate(method, (r["density"], r[key]), textcoords="offset points", xytext=(4, 3), fontsize=7)
        ax.set_xscale("log")
        ax.set_xlabel("density (measured)")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
    fig.suptitle(title or "encoder (all-MiniLM-L6-v2): sparse attention in every layer")
    return save(fig, path)


def plot_speedups(rows: list[dict[str, Any]], path: Path, title: str = "") -> Path:
    """Speed-up and energy efficiency of each accelerator over each GPU (simulated, log scale)."""
    designs = [r["label"] for r in rows]
    gpus = sorted({g for r in rows for g in r["vs"]})
    fig, axes = plt.subplots(1, 2, figsize=(max(8, 0.7 * len(designs) + 4), 4.4))
    width = 0.8 / max(1, len(gpus))
    for ax, metric, label in ((axes[0], "speedup", "speed-up (GPU time / accelerator time)"),
                              (axes[1], "energy", "energy efficiency (GPU energy / accelerator energy)")):
        for j, gpu in enumerate(gpus):
            xs = [i + (j - (len(gpus) - 1) / 2) * width for i in range(len(designs))]
            ax.bar(xs, [r["vs"][gpu][metric] for r in rows], width=width, label=gpu.upper())
        ax.set_xticks(range(len(designs)))
        ax.set_xticklabels(designs, rotation=45, ha="right", fontsize=8)
        ax.set_yscale("log")
        ax.axhline(1.0, color="black", lw=0.8)
        ax.set_ylabel(label)
        ax.grid(True, axis="y", which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title or "simulated accelerators vs GPUs (dense), same workload")
    return save(fig, path)


def plot_spatial(rows: list[dict[str, Any]], path: Path, title: str = "") -> Path:
    """Throughput (tokens/s) vs sequence length, one line per design."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for design in dict.fromkeys(r["design"] for r in rows):
        pts = sorted((r["seq"], r["tokens_per_s"]) for r in rows if r["design"] == design)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=design)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("sequence length (tokens)")
    ax.set_ylabel("throughput (tokens/s, simulated)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title or "Spatial-STAR vs baselines")
    return save(fig, path)
