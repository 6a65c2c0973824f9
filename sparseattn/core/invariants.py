"""Result invariants, in one place, checked before any result is printed or written (DESIGN.md, "Contracts": a
number printed is a number computed correctly, or an error).

* every number finite; energies, times, bytes, counts, areas and powers non-negative;
* densities and fractions in ``[0, 1]``;
* latency non-decreasing in sequence length for a fixed design (:func:`check_monotone`);
* the sizes a simulation is validated for (:data:`MAX_SEQ`, :data:`MAX_BATCH`): the analytical models count work
  in float64 and index tiles in int64, and were checked quadratic in ``seq`` up to ``2**36`` tokens (energy, latency,
  DRAM bytes per ``seq**2`` constant to 4 digits); past ``2**37`` int64 tile counts overflow. The stated bounds
  keep a 16x margin below that, and far above any model's context (the spatial sweeps stop at ``2**20``).

A failure raises :class:`ResultInvariantError` (a ``ValueError``) naming the quantity, its value and where it came
from, so the CLI reports it as a one-line error (exit code 2) instead of writing it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from itertools import pairwise
from typing import Any

from .errors import SparseAttnError

MAX_SEQ = 2**32  # tokens per sequence a simulation accepts (see the module docstring)
MAX_BATCH = 2**16  # sequences per batch a simulation accepts
# key fragments of a non-negative physical quantity (energies, times, bytes, counts, areas, powers, rates)
PHYSICAL = ("energy", "latency", "cycles", "bytes", "power", "area", "mm2", "gops", "tokens_per_s", "seconds",
            "utilisation")
PHYSICAL_SUFFIX = ("_s", "_ms", "_j", "_mj", "_pj", "_w", "_mb", "_gb")
FRACTION = ("density", "fraction", "recall")


class ResultInvariantError(SparseAttnError):
    """A computed result broke an invariant (non-finite, negative where physical, a fraction outside [0, 1])."""


def check_size(seq: int, batch: int = 1, what: str = "--seq", batch_name: str = "--batch") -> None:
    """Refuse a simulation outside the sizes it is validated for (:data:`MAX_SEQ`, :data:`MAX_BATCH`)."""
    if seq > MAX_SEQ:
        raise SparseAttnError(f"{what} {seq}: the simulator is validated up to {MAX_SEQ} tokens (2**32; its "
                              "tile counts are int64 and were checked quadratic up to 2**36)")
    if batch > MAX_BATCH:
        raise SparseAttnError(f"{batch_name} {batch}: the simulator is validated up to {MAX_BATCH} sequences (2**16)")


def _kind(key: str) -> str | None:
    k = key.lower()
    if any(f in k for f in FRACTION):
        return "fraction"
    if any(f in k for f in PHYSICAL) or k.endswith(PHYSICAL_SUFFIX):
        return "physical"
    return None


def check_number(key: str, value: Any, where: str, kind: str | None = None) -> None:
    """One number: finite; non-negative when ``kind`` (or its key) says physical; in [0, 1] for a fraction."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return
    kind = kind or _kind(key)
    if not math.isfinite(value):
        raise ResultInvariantError(f"{where}: {key} is {value} (not finite); an input is out of the range this "
                                   "model computes (a huge count, size or parameter)")
    if kind == "physical" and value < 0:
        raise ResultInvariantError(f"{where}: {key} is {value:.4g}, negative for a physical quantity; an input is "
                                   "out of the range this model computes")
    if kind == "fraction" and not 0.0 <= value <= 1.0 + 1e-9:
        raise ResultInvariantError(f"{where}: {key} is {value:.4g}, outside [0, 1]")


def check_tree(data: Any, where: str, path: str = "", kind: str | None = None) -> None:
    """Every number in a JSON-like tree (dicts, lists): finite, with the key-implied sign and range (a number's
    kind is its own key's, else its nearest named ancestor's)."""
    if isinstance(data, Mapping):
        for k, v in data.items():
            check_tree(v, where, f"{path}.{k}" if path else str(k), _kind(str(k)) or kind)
    elif isinstance(data, list | tuple):
        for i, v in enumerate(data):
            check_tree(v, where, f"{path}[{i}]", kind)
    else:
        check_number(path or "value", data, where, kind)


def check_sim_result(result: Any) -> Any:
    """A :class:`~sparseattn.hw.result.SimResult` (or mesh result): summary, energies, areas, DRAM bytes, stage
    cycles, density and utilisations. Returns the result."""
    where = f"simulation of {result.arch} at {result.shape.get('q_len', '?')} tokens"
    check_number("density", result.density, where, "fraction")
    for name in ("cycles", "latency_s", "dense_ops", "fixed_cycles"):
        check_number(name, getattr(result, name), where, "physical")
    check_tree(result.summary(), where, kind="physical")
    for e in result.energy:
        check_number(f"energy[{e.label}] pJ", e.pj, where, "physical")
    for a in result.area:
        check_number(f"area[{a.component}] mm2", a.mm2, where, "physical")
    check_tree(result.dram_bytes, where, "dram_bytes", "physical")
    check_tree(result.stage_cycles, where, "stage_cycles", "physical")
    check_tree(result.utilisation, where, "utilisation", "physical")
    return result


def check_rows(rows: Iterable[Mapping[str, Any]], where: str) -> None:
    """Result rows (a table to print or write): every number finite, physical keys non-negative, fractions in
    [0, 1]."""
    for i, row in enumerate(rows):
        check_tree(dict(row), f"{where} row {i}")


def check_monotone(points: Iterable[tuple[int, float]], where: str) -> None:
    """Latency ``(seq, latency)`` pairs of one fixed design: non-decreasing in sequence length (1e-9 relative
    slack for float rounding)."""
    ordered = sorted(points)
    for (s0, t0), (s1, t1) in pairwise(ordered):
        if s1 > s0 and t1 < t0 * (1 - 1e-9):
            raise ResultInvariantError(f"{where}: latency falls from {t0:.4g} s at {s0} tokens to {t1:.4g} s at "
                                       f"{s1} tokens (it must not decrease with sequence length)")
