"""Analytic cycle count of a dense GEMM on an ``rows x cols`` systolic array of multiply-accumulate PEs.

One function, :func:`gemm_cycles`, for ``(M x K) @ (K x N)``. It models the plain baseline array of the
systolic literature (and of SCALE-Sim, against which ``tests/hw/test_systolic.py`` checks it): operands move
one PE per cycle, a fold (one tile of the problem mapped onto the array) starts only after the previous fold
has finished, and memory never stalls the array. Extensions such as double-buffered stationary registers
(loading the next fold's weights while the current one computes) would overlap part of the per-fold
overhead and are not modelled.
"""

from __future__ import annotations

DATAFLOWS = ("os", "ws", "is")


def gemm_cycles(m: int, k: int, n: int, rows: int, cols: int, dataflow: str = "os") -> int:
    """Cycles for an ``(m x k) @ (k x n)`` matrix multiply on a ``rows x cols`` systolic array.

    The answer is ``folds * cycles_per_fold``: the problem is cut into array-sized tiles (folds) that run one
    after another, and every fold pays the same skewed pipeline fill and drain whatever its occupancy (a
    partial edge tile takes as long as a full one). Cycles are counted from the first operand entering the
    array to the last result leaving it, both inclusive. Write ``R = rows``, ``C = cols``.

    ``"os"`` -- output stationary. Each PE owns one output element and accumulates it in place. Rows of the
    array map to ``M``, columns to ``N``: ``folds = ceil(M / R) * ceil(N / C)``. Row ``i`` of the A tile
    enters from the left skewed by ``i`` cycles and column ``j`` of the B tile enters from the top skewed by
    ``j``, so the ``t``-th product of PE ``(i, j)`` happens at cycle ``t + i + j``. The farthest PE
    ``(R-1, C-1)`` does its last (``K``-th) product at cycle ``(K-1) + (R-1) + (C-1)``, so a fold takes
    ``K + R + C - 2`` cycles. Each PE's result is taken out at the cycle it completes (the write-back skew
    follows the input skew), so no separate drain is charged.

    ``"ws"`` -- weight stationary. The ``K x N`` operand is held in the PEs, rows mapping to ``K`` and columns
    to ``N``: ``folds = ceil(K / R) * ceil(N / C)``. A fold first shifts its weight tile in from the top, one
    array row per cycle (``R`` cycles). Then the ``M`` rows of A stream in from the left, skewed one cycle per
    array row, and partial sums flow down the columns. Input row ``t`` reaches PE ``(i, j)`` at
    ``R + t + i + j``, and the finished sum of column ``j`` leaves the bottom PE (``i = R-1``), so the last
    result (``t = M-1``, ``j = C-1``) appears at cycle ``R + (M-1) + (R-1) + (C-1)``: ``2R + C + M - 2``
    cycles per fold -- the weight load, ``M`` streamed rows, and ``R - 1 + C - 1`` of skew fill/drain.

    ``"is"`` -- input stationary: the same schedule with the roles of the operands swapped. The ``M x K``
    operand is held in the PEs, rows mapping to ``K`` and columns to ``M``: ``folds = ceil(K / R) *
    ceil(M / C)``, and the ``N`` columns of B are the stream, so a fold takes ``2R + C + N - 2`` cycles.

    With these definitions the count equals SCALE-Sim v3's "Total Cycles" plus one (SCALE-Sim reports the
    zero-based index of the last busy cycle) when memory does not stall.

    Args:
        m: rows of the left operand (and of the result), e.g. queries in ``Q @ K^T``.
        k: the reduction dimension, e.g. ``head_dim`` in ``Q @ K^T``.
        n: columns of the right operand (and of the result), e.g. keys in ``Q @ K^T``.
        rows: PE rows of the array.
        cols: PE columns of the array.
        dataflow: ``"os"``, ``"ws"`` or ``"is"``.

    Returns:
        The number of cycles, a positive int.

    Raises:
        ValueError: if a size is not a positive int or ``dataflow`` is not one of ``"os"``, ``"ws"``, ``"is"``.
    """
    for name, value in (("m", m), ("k", k), ("n", n), ("rows", rows), ("cols", cols)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"gemm_cycles: {name} must be a positive int, got {value!r}")
    if dataflow == "os":
        folds = ((m + rows - 1) // rows) * ((n + cols - 1) // cols)
        per_fold = k + rows + cols - 2
    elif dataflow == "ws":
        folds = ((k + rows - 1) // rows) * ((n + cols - 1) // cols)
        per_fold = 2 * rows + cols + m - 2
    elif dataflow == "is":
        folds = ((k + rows - 1) // rows) * ((m + cols - 1) // cols)
        per_fold = 2 * rows + cols + n - 2
    else:
        raise ValueError(f"gemm_cycles: unknown dataflow {dataflow!r}; expected one of {', '.join(DATAFLOWS)}")
    return folds * per_fold
