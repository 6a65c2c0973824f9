"""gemm_cycles: hand-counted cases, properties, input checks, and agreement with SCALE-Sim (when installed): our
count is exactly SCALE-Sim's "Total Cycles" plus one. The simulator's default fill/drain model for a formal tile
(``overlap_folds``, folds overlapped) is our own model, not SCALE-Sim's: its relations to ``gemm_cycles`` are
tested here."""

from __future__ import annotations

import contextlib
import csv
import io
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sparseattn.hw.systolic import gemm_cycles
from sparseattn.hw.timing import tile_cycles

DATAFLOWS = ("os", "ws", "is")


# --- hand-computed cases -----------------------------------------------------------------------------------


def test_one_fold_output_stationary_counted_by_hand():
    # 4x4 array, A is 4x3, B is 3x4: one fold. PE (i, j) does its t-th product at cycle t + i + j (0-based),
    # so the corner PE (3, 3) finishes its 3rd product at cycle 2 + 3 + 3 = 8: 9 cycles.
    assert gemm_cycles(4, 3, 4, 4, 4, "os") == 9
    assert gemm_cycles(4, 3, 4, 4, 4) == 9  # os is the default


def test_one_fold_weight_and_input_stationary_counted_by_hand():
    # ws: 4 cycles to shift in the 4x4 weight tile; input row t reaches PE (i, j) at 4 + t + i + j and the
    # column sum leaves the bottom row, so the last of 10 rows finishes at 4 + 9 + 3 + 3 = 19: 20 cycles.
    assert gemm_cycles(10, 4, 4, 4, 4, "ws") == 20
    # is is the same schedule with B's 10 columns as the stream.
    assert gemm_cycles(4, 4, 10, 4, 4, "is") == 20


def test_multi_fold_and_partial_tiles():
    # os, 5x8 @ 8x3 on 4x4: ceil(5/4) * ceil(3/4) = 2 folds of 8 + 4 + 4 - 2 = 14 cycles.
    assert gemm_cycles(5, 8, 3, 4, 4, "os") == 28
    # ws, 6x9 @ 9x5 on 4x4: ceil(9/4) * ceil(5/4) = 6 folds of 2*4 + 4 + 6 - 2 = 16 cycles.
    assert gemm_cycles(6, 9, 5, 4, 4, "ws") == 96
    # A partial edge tile costs as much as a full one.
    assert gemm_cycles(1, 64, 16, 16, 16, "os") == gemm_cycles(16, 64, 16, 16, 16, "os")


def test_single_pe_array():
    # A 1x1 array does one multiply-accumulate per cycle; os has no reload overhead, ws/is reload the
    # stationary operand once per fold (one cycle).
    assert gemm_cycles(3, 5, 7, 1, 1, "os") == 3 * 5 * 7
    assert gemm_cycles(3, 5, 7, 1, 1, "ws") == 5 * 7 * (3 + 1)
    assert gemm_cycles(3, 5, 7, 1, 1, "is") == 5 * 3 * (7 + 1)


# --- properties --------------------------------------------------------------------------------------------

sizes = st.integers(1, 300)
dims = st.integers(1, 64)


@given(sizes, sizes, sizes, dims, dims, st.sampled_from(DATAFLOWS), st.sampled_from("mkn"), st.integers(1, 100))
def test_more_work_never_takes_fewer_cycles(m, k, n, rows, cols, dataflow, axis, extra):
    grown = {"m": m, "k": k, "n": n}
    grown[axis] += extra
    base = gemm_cycles(m, k, n, rows, cols, dataflow)
    assert gemm_cycles(grown["m"], grown["k"], grown["n"], rows, cols, dataflow) >= base


@given(sizes, sizes, sizes, dims, dims, st.sampled_from(DATAFLOWS))
def test_never_faster_than_all_pes_busy(m, k, n, rows, cols, dataflow):
    # Each PE does at most one multiply-accumulate per cycle.
    assert gemm_cycles(m, k, n, rows, cols, dataflow) * rows * cols >= m * k * n


@given(sizes, sizes, sizes, dims, dims)
def test_input_stationary_is_weight_stationary_on_the_transpose(m, k, n, rows, cols):
    # (A @ B)^T = B^T @ A^T: holding A (is) is holding the weights of the transposed product (ws).
    assert gemm_cycles(m, k, n, rows, cols, "is") == gemm_cycles(n, k, m, rows, cols, "ws")


# --- the simulator's overlapped-fold model (ours, not SCALE-Sim's) ---------------------------------------------


@given(st.integers(1, 64), sizes, st.integers(1, 64), dims, dims)
def test_overlapped_folds_equal_the_fold_count_for_a_single_fold(m, k, n, rows, cols):
    m, n = min(m, rows), min(n, cols)  # one fold
    assert tile_cycles(m, k, n, rows, cols, overlap_folds=True) == gemm_cycles(m, k, n, rows, cols, "os")


@given(sizes, sizes, sizes, dims, dims)
def test_overlapped_folds_pay_one_fill_and_are_never_above_the_fold_count(m, k, n, rows, cols):
    overlapped = tile_cycles(m, k, n, rows, cols, overlap_folds=True)
    serial = gemm_cycles(m, k, n, rows, cols, "os")
    folds = -(-m // rows) * -(-n // cols)
    assert overlapped <= serial
    assert serial - overlapped == (folds - 1) * (rows + cols - 2)  # every fold after the first hides its fill
    assert overlapped * rows * cols >= m * k * n  # never faster than all PEs busy
    assert tile_cycles(m, k, n, rows, cols, overlap_folds=False) == serial


# --- input checks ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [0, -3, 2.0, True, None])
@pytest.mark.parametrize("position", range(5))
def test_rejects_non_positive_or_non_int_sizes(bad, position):
    args = [8, 8, 8, 4, 4]
    args[position] = bad
    with pytest.raises(ValueError, match="positive int"):
        gemm_cycles(*args)


@pytest.mark.parametrize("dataflow", ["OS", "rs", "", "output_stationary"])
def test_rejects_unknown_dataflow(dataflow):
    with pytest.raises(ValueError, match="unknown dataflow"):
        gemm_cycles(8, 8, 8, 4, 4, dataflow)


# --- agreement with SCALE-Sim ------------------------------------------------------------------------------

# CALC (estimate-bandwidth) mode never stalls the reads; 64 MiB SRAMs keep the output writes from stalling.
_SCALESIM_CONFIG = """\
[general]
run_name = gemm

[architecture_presets]
ArrayHeight = {rows}
ArrayWidth = {cols}
IfmapSramSzkB = 65536
FilterSramSzkB = 65536
OfmapSramSzkB = 65536
IfmapOffset = 0
FilterOffset = 10000000
OfmapOffset = 20000000
Dataflow = {dataflow}
Bandwidth = 10
ReadRequestBuffer = 32
WriteRequestBuffer = 32

[layout]
IfmapCustomLayout = False
IfmapSRAMBankBandwidth = 10
IfmapSRAMBankNum = 10
IfmapSRAMBankPort = 2
FilterCustomLayout = False
FilterSRAMBankBandwidth = 10
FilterSRAMBankNum = 10
FilterSRAMBankPort = 2

[sparsity]
SparsitySupport = false

[run_presets]
InterfaceBandwidth = CALC
UseRamulatorTrace = False
"""


@pytest.fixture(scope="module")
def scalesim_cycles():
    """A function running one GEMM through SCALE-Sim and returning its (total, stall) cycles."""
    pytest.importorskip("scalesim", reason="SCALE-Sim not installed: pip install scalesim")
    from scalesim.memory import double_buffered_scratchpad_mem
    from scalesim.scale_sim import scalesim as ScaleSim

    # SCALE-Sim 3.0.0 ends each layer with int(max(list of 1-element arrays)), a TypeError from NumPy 2.4 on
    # (scalesim-project/SCALE-Sim#160, fix pending in #162). Shadow the builtin max in that one module with a
    # NumPy reduction, as #162 does; the result is the same number.
    def _np_max(*args):
        return np.max(np.asarray(args[0] if len(args) == 1 else args))

    patch = pytest.MonkeyPatch()
    patch.setattr(double_buffered_scratchpad_mem, "max", _np_max, raising=False)

    def run(m: int, k: int, n: int, rows: int, cols: int, dataflow: str) -> tuple[int, int]:
        with tempfile.TemporaryDirectory(prefix="scalesim-") as tmp:
            root = Path(tmp)
            config = root / "arch.cfg"
            config.write_text(_SCALESIM_CONFIG.format(rows=rows, cols=cols, dataflow=dataflow))
            topology = root / "gemm.csv"  # GEMM topology rows: name, M, N, K (each line ends with a comma)
            topology.write_text(f"Layer, M, N, K,\nattn, {m}, {n}, {k},\n")
            layout = root / "layout.csv"  # only read with custom layouts, which are off; must exist
            layout.write_text("Layer name,\n")
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                sim = ScaleSim(
                    save_disk_space=True,  # no per-cycle trace files
                    verbose=False,
                    config=str(config),
                    topology=str(topology),
                    layout=str(layout),
                    input_type_gemm=True,
                )
                sim.run_scale(top_path=str(root))
            with open(root / "gemm" / "COMPUTE_REPORT.csv", newline="") as f:
                (row,) = list(csv.DictReader(f, skipinitialspace=True))
            return int(row["Total Cycles"]), int(row["Stall Cycles"])

    yield run
    patch.undo()


SANGER = (64, 16)  # Sanger's 64x16 PE array
BIG = (128, 128)

# (array, M, K, N, dataflow): dense attention GEMMs, Q @ K^T (K = head_dim) and S @ V (N = head_dim), plus a
# single-query decode row, a ragged shape (partial tiles on every axis) and an FFN-like tile.
AGREEMENT_CASES = [
    (SANGER, 128, 64, 512, "os"),  # Q @ K^T, 128-query tile
    (SANGER, 512, 512, 64, "os"),  # S @ V
    (SANGER, 1, 64, 512, "os"),  # decode: one query against 512 keys
    (SANGER, 100, 37, 70, "os"),  # ragged
    (BIG, 512, 64, 512, "os"),  # Q @ K^T, 512 queries
    (BIG, 512, 512, 64, "os"),
    (BIG, 1, 64, 512, "os"),
    (BIG, 100, 37, 70, "os"),
    (BIG, 64, 256, 128, "os"),  # FFN-like
    (BIG, 128, 64, 512, "ws"),
    (BIG, 512, 512, 64, "ws"),
    (SANGER, 100, 37, 70, "ws"),
    (BIG, 128, 64, 512, "is"),
    (BIG, 512, 512, 64, "is"),
    (SANGER, 100, 37, 70, "is"),
]


def _case_id(case: tuple) -> str:
    (rows, cols), m, k, n, dataflow = case
    return f"{rows}x{cols}-{dataflow}-M{m}-K{k}-N{n}"


@pytest.mark.parametrize(("array", "m", "k", "n", "dataflow"), AGREEMENT_CASES, ids=map(_case_id, AGREEMENT_CASES))
def test_agrees_with_scalesim(scalesim_cycles, array, m, k, n, dataflow):
    rows, cols = array
    total, stalls = scalesim_cycles(m, k, n, rows, cols, dataflow)
    assert stalls == 0, "memory stalled: the comparison is meant for compute cycles only"
    # SCALE-Sim reports the 0-based index of the last busy cycle, one less than our count: exactly.
    assert gemm_cycles(m, k, n, rows, cols, dataflow) == total + 1
