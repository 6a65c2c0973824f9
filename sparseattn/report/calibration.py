"""Equal-accuracy tables: each method calibrated to a loss budget (:mod:`sparseattn.eval.calibrate`), as markdown
for ``sparseattn calibrate --out`` and the calibration benchmark."""

from __future__ import annotations

from typing import Any


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
