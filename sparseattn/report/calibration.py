"""Equal-accuracy tables: each method calibrated to a loss budget (:mod:`sparseattn.eval.calibrate`), as markdown
for ``sparseattn calibrate --out`` and the calibration benchmark, and the README's equal-accuracy table, generated from
``benchmarks/results/calibrate/bench_calibrate.json`` (a test regenerates it and fails when the README differs)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..core.files import write_atomic


def setting_label(params: dict[str, Any], reached: bool, measurable: bool = True) -> str:
    """A calibrated setting as the tables print it: ``k=0.56``; ``... (unreached)`` for an unreached budget's
    closest point; ``not measurable at this window`` when the knob moved no density there (nothing calibrated)."""
    if not measurable:
        return "not measurable at this window"
    text = ", ".join(f"{k}={v:g}" for k, v in params.items())
    return text if reached else f"{text} (unreached)"


def judged_label(row: dict[str, Any]) -> str:
    """'yes' / 'no' for a calibrated setting on the judged text; for a row with no calibrated setting, why not."""
    if not row.get("measurable", True):
        return "n/a (not measurable)"
    if not row["reached"]:
        return "n/a (unreached)"
    return "yes" if row["judge_loss"] <= row["budget"] else "no"


def budget_label(budget: float, kind: str) -> str:
    """A decoder's budget as its perplexity increase (``1.0%``), an encoder's as the cosine it keeps (``cosine >=
    0.99``): the loss is 1 - cosine there, and a reader asks for the cosine."""
    return f"{budget:.1%}" if kind == "decoder" else f"cosine >= {1 - budget:.3g}"


def loss_label(loss: float, kind: str) -> str:
    """A decoder's loss (or gap) as a signed percentage of perplexity, an encoder's as 1 - cosine (4 decimals)."""
    return f"{loss:+.2%}" if kind == "decoder" else f"{loss:+.4f}"


def _setting(row: dict[str, Any]) -> str:
    return setting_label(row["params"], row["reached"], row.get("measurable", True))


def calibration_markdown(rows: list[dict[str, Any]]) -> str:
    """One line per (method, budget): setting, density and loss on the calibration text and the judged text, gap."""
    if not rows:
        return "(no calibration rows)"
    loss = "ppl change" if rows[0]["kind"] == "decoder" else "1 - cosine"
    head = (f"Calibrated on {rows[0]['calib_text']}, judged on {rows[0]['judge_text']} ({rows[0]['model']}).\n\n"
            f"| method | budget | setting | density (cal) | {loss} (cal) | density (judged) | {loss} (judged) | gap "
            "| on budget when judged | points |\n|---|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for r in rows:
        k = r["kind"]
        lines.append(f"| {r['method']} | {budget_label(r['budget'], k)} | {_setting(r)} | {r['calib_density']:.3f} | "
                     f"{loss_label(r['calib_loss'], k)} | {r['judge_density']:.3f} | {loss_label(r['judge_loss'], k)} "
                     f"| {loss_label(r['gap'], k)} | "
                     f"{judged_label(r)} | {r['evaluations']} |")
    notes = [f"- {r['method']} at {budget_label(r['budget'], r['kind'])}: {r['note']}." for r in rows if r.get("note")]
    if notes:
        lines += ["", "Notes (a budget met only at the densest end, unreached, or not measurable here):", *notes]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ the README table
ROOT = Path(__file__).resolve().parents[2]
BENCH_JSON = ROOT / "benchmarks" / "results" / "calibrate" / "bench_calibrate.json"
README = ROOT / "README.md"
BEGIN = "<!-- equal-accuracy table: generated from bench_calibrate.json by `python benchmarks/bench_calibrate.py` -->"
END = "<!-- end of equal-accuracy table -->"


def _held_out(row: dict[str, Any] | None) -> list[str]:
    if row is None:
        return ["—", "—", "—"]
    if not row.get("measurable", True):
        return ["—", "—", "not measurable"]
    return [f"{row['judge_density']:.3f}", loss_label(row["judge_loss"], row["kind"]), judged_label(row)]


def readme_table(data: dict[str, Any]) -> str:
    """One line per method: at each budget, its held-out (judged) density, loss and whether it stayed on budget;
    then the PADE / threshold-oracle density ratio at the largest budget. Everything from ``bench_calibrate.json``."""
    rows, c = data["rows"], data["config"]
    budgets = sorted({r["budget"] for r in rows})
    kind = rows[0]["kind"]
    by = {(r["method"], r["budget"]): r for r in rows}
    label = (lambda b: f"+{100 * b:g}%") if kind == "decoder" else (lambda b: budget_label(b, kind))
    head = ["method"] + [f"{label(b)}: {col}" for b in budgets
                         for col in ("density", "ppl change" if kind == "decoder" else "1 - cosine", "on budget")]
    lines = [f"{c['model']}, calibrated on {c['calib_text']} and judged (held out) on {c['judge_text']}, "
             f"{c['calib_tokens']}-token windows, every layer sparse:", "",
             "| " + " | ".join(head) + " |", "|---" + "|---:|---:|:-:" * len(budgets) + "|"]
    for m in dict.fromkeys(r["method"] for r in rows):
        lines.append("| " + " | ".join([f"`{m}`"] + [x for b in budgets for x in _held_out(by.get((m, b)))]) + " |")
    ratio = data.get("targets", {}).get("pade_over_threshold_density_at_2pct_judged")
    if ratio is not None:
        lines += ["", f"PADE's held-out density at +2% is {ratio:.2f}x the threshold oracle's."]
    return "\n".join(lines)


def readme_with_calibration_table(readme: str, data: dict[str, Any]) -> str:
    """``readme`` with the text between the equal-accuracy markers replaced by :func:`readme_table`."""
    if BEGIN not in readme or END not in readme:
        raise ValueError(f"README has no equal-accuracy table markers ({BEGIN!r} ... {END!r})")
    head, rest = readme.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return head + BEGIN + "\n" + readme_table(data) + "\n" + END + tail


def write_readme_table(json_path: Path = BENCH_JSON, readme: Path = README) -> Path:
    """Regenerate ``readme``'s equal-accuracy table from ``json_path``."""
    data = json.loads(Path(json_path).read_text())
    write_atomic(readme, readme_with_calibration_table(Path(readme).read_text(), data))
    return readme
