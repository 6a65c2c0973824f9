"""Normalised arithmetic complexity of a trace: each operation weighted by its bit-level cost.

SOFA normalises its ablations with an "arithmetic complexity model" (Brent & Zimmermann, *Modern Computer
Arithmetic*) whose weights it does not list. We use the textbook bit-operation costs, for ``b``-bit
operands:

==========================  ============================  ===============================================
operation                   cost                          reasoning
==========================  ============================  ===============================================
add, compare, shift, lzc    ``b``                         one pass over the bits (ripple add, comparator,
                                                          barrel-shift stage, priority encoder)
mul                         ``b^2``                       schoolbook multiplication
mac                         ``b^2 + 2b``                  a multiply and a ``2b``-bit accumulate
exp                         ``3 b^2 + 3 b``               range reduction and a cubic polynomial (3 mul, 3 add)
div                         ``3 b^2``                     a reciprocal by Newton iteration (about 3 mul)
load                        0                             memory is not arithmetic
==========================  ============================  ===============================================

These weights are our stated assumption; the ablation ratios depend on them, so each report prints them.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..core.workload import OpKey, Workload

WEIGHTS = {
    "add": lambda b: b,
    "compare": lambda b: b,
    "shift": lambda b: b,
    "lzc": lambda b: b,
    "mul": lambda b: b * b,
    "mac": lambda b: b * b + 2 * b,
    "exp": lambda b: 3 * b * b + 3 * b,
    "div": lambda b: 3 * b * b,
    "load": lambda b: 0,
}
WEIGHTS_TEXT = "add/compare/shift/lzc = b, mul = b^2, mac = b^2 + 2b, exp = 3b^2 + 3b, div = 3b^2 (b = operand bits)"


def op_cost(op: str, bits: int) -> float:
    if op not in WEIGHTS:
        raise ValueError(f"no complexity weight for op {op!r}; known: {', '.join(WEIGHTS)}")
    return float(WEIGHTS[op](bits))


def weighted(ops: Mapping[OpKey | tuple[str, str, int], float]) -> float:
    """Sum of ``count * op_cost(op, bits)``."""
    return sum(count * op_cost(key[1], key[2]) for key, count in ops.items())


def formal_ops(w: Workload, order: str) -> dict[OpKey, float]:
    """Formal-stage ops of a SOFA trace for one SU-FA visiting order (``descending``, ``ascending``, ``fa2``)."""
    counts = w.meta["sufa"][order]
    bits = int(w.meta["params"]["formal_bits"])
    ops = {OpKey("qk", "mac", bits): w.count(stage="qk", op="mac")}
    for op in ("exp", "add", "mul", "compare", "div"):
        ops[OpKey("softmax", op, bits)] = counts[op]
    ops[OpKey("pv", "mac", bits)] = counts["pv_mac"]
    return ops


def stage_ops(w: Workload, *stages: str) -> dict[OpKey, float]:
    return {k: c for k, c in w.ops.items() if k.stage in stages}


def sofa_ablation(segmented: Workload, full_row: Workload, baseline_bits: int = 4) -> dict[str, dict[str, float]]:
    """SOFA's Fig. 17 ablation in weighted complexity, from two SOFA traces of the same input: ``segmented``
    (the configured ``Tc``) and ``full_row`` (``Tc = 1``: one sort over the whole row).

    * ``baseline``: ``baseline_bits``-bit multiply prediction on every valid pair + full-row sort + FA-2;
    * ``dlzs``: DLZS shift-add prediction + full-row sort + FA-2;
    * ``dlzs+sads+sufa``: DLZS + SADS + SU-FA (descending).

    All three are costed on the segmented run's selection (same kept pairs). Returns per configuration the
    weighted cost of each stage, the total, and the total normalised to the baseline.
    """
    shape = segmented.shape
    mult_predict = {OpKey("predict", "mac", baseline_bits): float(shape.valid_pairs * shape.head_dim)}
    configs = {
        "baseline": (mult_predict, stage_ops(full_row, "select"), formal_ops(segmented, "fa2")),
        "dlzs": (stage_ops(segmented, "predict"), stage_ops(full_row, "select"), formal_ops(segmented, "fa2")),
        "dlzs+sads+sufa": (
            stage_ops(segmented, "predict"),
            stage_ops(segmented, "select"),
            formal_ops(segmented, "descending"),
        ),
    }
    out: dict[str, dict[str, float]] = {}
    for name, (pred, sel, formal) in configs.items():
        row = {"predict": weighted(pred), "select": weighted(sel), "formal": weighted(formal)}
        row["total"] = sum(row.values())
        out[name] = row
    base = out["baseline"]["total"]
    for row in out.values():
        row["normalised"] = row["total"] / base
    return out


def sufa_orders(w: Workload) -> dict[str, dict[str, float]]:
    """Weighted cost of the three visiting orders of a SOFA trace: ``cost`` is softmax + PV (QK MACs are the
    same for every order and left out), ``softmax_cost`` the softmax bookkeeping alone (exp, add, mul,
    compare, div; no PV MACs); each also normalised to FlashAttention-2 and to the ascending order."""
    out: dict[str, dict[str, float]] = {}
    for order in ("descending", "ascending", "fa2"):
        ops = {k: c for k, c in formal_ops(w, order).items() if k.stage != "qk"}
        out[order] = {
            "cost": weighted(ops),
            "softmax_cost": weighted({k: c for k, c in ops.items() if k.stage != "pv"}),
        }
    for row in list(out.values()):
        for name in ("cost", "softmax_cost"):
            row[f"{name}_vs_fa2"] = row[name] / out["fa2"][name]
            row[f"{name}_vs_ascending"] = row[name] / out["ascending"][name]
    return out
