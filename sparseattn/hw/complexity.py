"""Normalised arithmetic complexity of a trace: each operation weighted by its bit-level cost.

SOFA normalises its ablations with an "arithmetic complexity model" (Brent & Zimmermann, *Modern Computer
Arithmetic*) whose weights it does not list. We use textbook bit-operation costs of two primitives for ``b``-bit
operands -- an adder costs ``b`` (one pass over the bits), a multiplier ``b^2`` (schoolbook) -- and price every
trace operation with the **same recipes the energy and area model uses** (``op_cost`` in
``configs/technology.yaml``; a ``_2x`` primitive is twice the operand width), so there is one cost model of an
operation in the package:

==========================  ============================  ===============================================
operation                   recipe (technology.yaml)      bit cost
==========================  ============================  ===============================================
add, compare, shift         1 adder                       ``b``
lzc                         1/2 adder (priority encoder)  ``b / 2``
mul                         1 multiplier                  ``b^2``
mac                         multiplier + 2b-bit adder     ``b^2 + 2b``
exp                         3 multiply-adds               ``3 b^2 + 3 b``
div                         Newton-Raphson, 3 iterations  ``6 b^2 + 6 b``
                            of 2 multiply-adds
load                        0                             memory is not arithmetic
==========================  ============================  ===============================================

These weights are our stated assumption; the ablation ratios depend on them, so each report prints them
(:data:`WEIGHTS_TEXT`).
"""

from __future__ import annotations

from collections.abc import Mapping

from ..core.records import SufaCounts
from ..core.workload import OpKey, Workload
from .technology import load_technology

PRIMITIVE_BIT_COST = {"int_add": lambda b: b, "int_mul": lambda b: b * b}


def _recipes() -> dict[str, dict[str, float]]:
    return load_technology().op_cost


def op_cost(op: str, bits: int) -> float:
    """Bit-level cost of one ``bits``-wide operation ``op`` (the technology table's recipe, adders ``b``,
    multipliers ``b^2``)."""
    recipe = _recipes().get(op)
    if recipe is None:
        raise ValueError(f"no complexity weight for op {op!r}; known: {', '.join(_recipes())}")
    total = 0.0
    for prim, weight in recipe.items():
        width = 2 * bits if prim.endswith("_2x") else bits
        total += weight * PRIMITIVE_BIT_COST[prim.removesuffix("_2x")](width)
    return total


def _weights_text() -> str:
    def term(op: str) -> str:
        parts = []
        for prim, w in _recipes()[op].items():
            base = prim.removesuffix("_2x")
            width = "2b" if prim.endswith("_2x") else "b"
            cost = width if base == "int_add" else f"{width}^2"
            if w:
                parts.append(cost if w == 1 else f"{w:g}{cost}")
        return " + ".join(parts) or "0"

    return ", ".join(f"{op} = {term(op)}" for op in _recipes()) + " (b = operand bits; adder b, multiplier b^2)"


WEIGHTS_TEXT = _weights_text()


def weighted(ops: Mapping[OpKey | tuple[str, str, int], float]) -> float:
    """Sum of ``count * op_cost(op, bits)``."""
    return sum(count * op_cost(key[1], key[2]) for key, count in ops.items())


def formal_ops(w: Workload, order: str) -> dict[OpKey, float]:
    """Formal-stage ops of a SOFA trace for one SU-FA visiting order (``descending``, ``ascending``, ``fa2``), from
    its :class:`~sparseattn.core.records.SufaCounts` record (a trace without one is a clear error). The record is
    measured: a scaled trace is refused (its QK count moved, the record did not)."""
    sufa = w.record(SufaCounts, "the SU-FA complexity model (hw/complexity.py)")
    if w.source_shape is not None:
        raise ValueError("the SU-FA complexity model reads a trace at the shape it was measured on, not a scaled one")
    counts, bits = sufa.order(order), sufa.bits
    ops = {OpKey("qk", "mac", bits): w.count(stage="qk", op="mac")}
    for op in ("exp", "add", "mul", "compare", "div"):
        ops[OpKey("softmax", op, bits)] = getattr(counts, op)
    ops[OpKey("pv", "mac", bits)] = counts.pv_mac
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
