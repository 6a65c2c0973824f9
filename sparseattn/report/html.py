"""``report.html``: one self-contained page (figures embedded as data URIs, no scripts, no network) a reader can
trust -- every number says what it is (unit; *measured* on the real model, *simulated* by the hardware model, or
*quoted* from a paper), with a "how to read this" paragraph and the assumptions behind the hardware numbers."""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

CSS = """
body { font-family: system-ui, sans-serif; max-width: 1180px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; margin: .8em 0; font-size: .86em; }
th, td { border: 1px solid #ddd; padding: .25em .5em; text-align: right; }
th { background: #f4f4f4; } td:first-child, th:first-child { text-align: left; }
.tag { font-size: .75em; color: #fff; border-radius: 3px; padding: 0 .3em; }
.measured { background: #2a7; } .simulated { background: #27a; } .quoted { background: #a72; }
.note { color: #555; font-size: .9em; } img { max-width: 100%; border: 1px solid #eee; }
.yes { color: #2a7; font-weight: bold; } .no { color: #c33; } td.text { text-align: left; }
"""

TAG = {"measured": '<span class="tag measured">measured</span>',
       "simulated": '<span class="tag simulated">simulated</span>',
       "quoted": '<span class="tag quoted">paper</span>'}


def _fmt(v: Any, digits: int = 4) -> str:
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return html.escape(str(v))


def _cell(value: Any, spec: str | None) -> str:
    if isinstance(value, Markup):
        return value
    if spec and isinstance(value, int | float) and not isinstance(value, bool):
        if spec.endswith("d") and isinstance(value, float) and value.is_integer():
            value = int(value)
        if value != value:
            return "–"  # NaN: no value
        return html.escape(significant(value) if spec == "sig" else format(value, spec))
    return _fmt(value)


def significant(value: float, digits: int = 3) -> str:
    """``digits`` significant digits without an exponent: 0.000385, 0.0537, 4.56, 115, 1,090, 4,580."""
    if value == 0 or abs(value) >= 10 ** (digits - 1):
        return f"{value:,.0f}"
    return f"{value:.{digits}g}" if abs(value) >= 1e-4 else f"{value:.{digits - 1}e}"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], cls: str = "",
          formats: Sequence[str | None] | None = None) -> str:
    """An HTML table; headers may carry markup (tags), cells are escaped unless they are ``Markup``. ``formats``
    gives each column's one number format (a ``format`` spec such as ``.3f``, ``sig`` for three significant digits
    without an exponent; None: as is)."""
    specs = list(formats or []) + [None] * (len(headers) - len(formats or []))
    head = "".join(f"<th>{h}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td{_align(c)}>{_cell(c, s)}</td>" for c, s in zip(r, specs, strict=False))
                   + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _align(value: Any) -> str:
    """Prose cells (a sentence, not a name or number) read left-aligned."""
    return ' class="text"' if isinstance(value, str) and " " in value.strip() and len(value) > 24 else ""


def section_id(heading: str) -> str:
    """A section's anchor: lower case, words joined by hyphens (``The papers' claims`` -> ``the-papers-claims``)."""
    return re.sub(r"[^a-z0-9]+", "-", heading.lower().replace("'", "")).strip("-")


class Markup(str):
    """A cell that is already HTML."""


def figure(path: Path, caption: str) -> str:
    """An embedded PNG (data URI) with its caption."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return (f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
            f'<figcaption class="note">{html.escape(caption)}</figcaption></figure>')


def page(title: str, sections: Sequence[tuple[str, str]], meta: dict[str, Any]) -> str:
    """The whole document: title, sections (heading, HTML body) and the run's configuration and environment."""
    body = "".join(f'<section id="{section_id(h)}"><h2>{html.escape(h)}</h2>{b}</section>' for h, b in sections)
    appendix = f"<pre>{html.escape(json.dumps(meta, indent=1, default=str))}</pre>"
    stamp = datetime.now().strftime("%Y-%m-%d %H:%M")
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>"
            f'<p class="note">Generated {stamp} by sparseattn.</p>{body}'
            f'<section id="configuration"><h2>Configuration and environment</h2>{appendix}</section></body></html>')
