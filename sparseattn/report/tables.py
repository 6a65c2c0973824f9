"""Markdown tables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[str], headers: Sequence[str] | None = None) -> str:
    """A GitHub-flavoured markdown table of ``columns`` taken from each row."""
    headers = list(headers or columns)
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_cell(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def _params(p: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in p.items()) or "-"


def perplexity_rows_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """The sweep's rows as the README's perplexity table (relative increase vs dense of the same text)."""
    shaped = [
        {
            "text": r["text"],
            "method": r["method"],
            "target": "-" if r.get("target_density") is None else f"{r['target_density']:.2f}",
            "params": _params(r.get("params", {})),
            "ppl": f"{r['ppl']:.2f}",
            "rel": "-"
            if r["method"] == "dense" or r.get("rel_increase") is None
            else f"{100 * r['rel_increase']:+.2f}%",
            "density": f"{r['density']:.3f}",
        }
        for r in rows
    ]
    return markdown_table(
        shaped,
        ["text", "method", "target", "params", "ppl", "rel", "density"],
        ["text", "method", "target density", "parameters", "perplexity", "vs dense", "measured density"],
    )
