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


def coinciding_targets(rows: Sequence[dict[str, Any]], digits: int = 3) -> list[str]:
    """Where a sweep's targets collapse: for each (text, method), targets whose measured densities agree to the
    ``digits`` shown (block top-k at 0.10 and 0.05 both at 0.180), as one sentence each."""
    groups: dict[tuple[str, str, float], list[float]] = {}
    for r in rows:
        if r.get("target_density") is None:
            continue
        key = (r["text"], r["method"], round(r["density"], digits))
        groups.setdefault(key, []).append(r["target_density"])
    out = []
    for (text, method, density), targets in groups.items():
        if len(targets) > 1:
            listed = " and ".join(f"{t:.2f}" for t in sorted(targets, reverse=True))
            out.append(f"{method} on {text}: targets {listed} land on the same density, {density:.{digits}f} (the "
                       "method cannot go lower on this input; these rows are one measurement)")
    return out
