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
