"""Equal-accuracy tables: each method calibrated to a loss budget (:mod:`sparseattn.eval.calibrate`), as markdown
for ``sparseattn calibrate --out`` and the calibration benchmark."""

from __future__ import annotations

from typing import Any


def _setting(row: dict[str, Any]) -> str:
    text = ", ".join(f"{k}={v:g}" for k, v in row["params"].items())
    return text if row["reached"] else f"{text} (unreached)"


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
        lines.append(f"| {r['method']} | {r['budget']:.1%} | {_setting(r)} | {r['calib_density']:.3f} | "
                     f"{r['calib_loss']:+.2%} | {r['judge_density']:.3f} | {r['judge_loss']:+.2%} | {r['gap']:+.2%} | "
                     f"{'yes' if r['judged_on_budget'] else 'no'} | {r['evaluations']} |")
    return "\n".join(lines)
