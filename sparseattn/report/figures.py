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
