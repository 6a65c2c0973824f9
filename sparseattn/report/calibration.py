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
    notes = calibration_notes(rows)
    if notes:
        lines += ["", "Notes (a setting shared by budgets, a budget met only at the densest end or past a non-monotone "
                  "loss, unreached, or not measurable here):", *notes]
    return "\n".join(lines)


def _at_sparsest_end(method: str, params: dict[str, Any]) -> bool:
    from ..eval.calibrate.search import knob_value
    from ..methods.registry import get_method

    knobs = get_method(method).knobs
    return bool(knobs) and params.get(knobs[0].name) == knob_value(knobs[0], 1.0)


def calibration_notes(rows: list[dict[str, Any]]) -> list[str]:
    """One line per method and note (the budgets it applies to grouped); and, for a method calibrated to the same
    setting at several budgets, why: the search's next sparser point was already over the largest of them."""
    grouped: dict[tuple[str, str], list[str]] = {}
    settings: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        label = budget_label(r["budget"], r["kind"])
        if r.get("note"):
            grouped.setdefault((r["method"], r["note"]), []).append(label)
        if r["reached"]:
            settings.setdefault((r["method"], repr(sorted(r["params"].items()))), []).append(r)
    out = [f"- {m} at {', '.join(labels)}: {note}." for (m, note), labels in grouped.items()]
    for (m, _), same in settings.items():
        if len(same) > 1:
            top = max(same, key=lambda r: r["budget"])
            why = ("it is the sparsest end of the knob's range" if _at_sparsest_end(m, top["params"]) else
                   f"the next sparser setting the search measured was already over "
                   f"{budget_label(top['budget'], top['kind'])}, so the loss jumps past every one of these budgets "
                   "within one step of the search there")
            out.append(f"- {m}: the same setting at {', '.join(budget_label(r['budget'], r['kind']) for r in same)}; "
                       f"{why}.")
    return out


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
