"""PADE's lane / scoreboard timing model (hw/bitserial.py) and its use by the simulator."""

import numpy as np
import pytest
import torch

import sparseattn
from sparseattn.core.quant import quantize_symmetric
from sparseattn.hw import load_arch, load_model_shape, load_trace, simulate, with_overrides
from sparseattn.hw.bitserial import (
    BUSIEST_NOBS,
    LEGACY_WORK_NOBS,
    PLANES,
    lane_utilisation,
    sampled_lane_utilisation,
    trace_lane_utilisation,
    work_without_bs,
)
from sparseattn.hw.schema import BitSerialLanes
from sparseattn.methods.pade.bui import active_elements
from tests.helpers import random_qkv

LLAMA_2K = load_model_shape("llama2-7b").shape(2048)


def _reference(work, planes, latency, scoreboard, lanes_per_row=16):
    """The formula as PADE's method computed it before it moved to hw (torch, padded round-robin deal)."""
    work, planes = torch.as_tensor(work), torch.as_tensor(planes)
    pad = (-work.shape[-1]) % lanes_per_row
    w = torch.nn.functional.pad(work.double(), (0, pad)).unflatten(-1, (-1, lanes_per_row)).sum(dim=-2)
    p = torch.nn.functional.pad(planes.double(), (0, pad)).unflatten(-1, (-1, lanes_per_row)).sum(dim=-2)
    row_time = torch.maximum(w, (w + p * latency) / scoreboard).amax(dim=-1)
    return float(w.sum()) / (float(row_time.sum()) * lanes_per_row)


def test_one_row_counted_by_hand():
    planes = np.array([[3, 1, 0, 2]])  # keys dealt round-robin to 2 lanes: lane 0 gets keys 0, 2; lane 1 keys 1, 3
    # in order, 10-cycle plane latency: lane 0 = 3 + 3 x 10 = 33 cycles, lane 1 = 3 + 30 = 33; work 6 of 66
    assert lane_utilisation(planes, planes, 10, 1, lanes_per_row=2) == pytest.approx(6 / 66)
    # 32 entries hide the latency: each lane as long as its work (3 cycles): fully busy
    assert lane_utilisation(planes, planes, 10, 32, lanes_per_row=2) == pytest.approx(1.0)
    # uneven lanes: the row waits for its slowest lane
    uneven = np.array([[4, 1]])
    assert lane_utilisation(uneven, uneven, 0, 1, lanes_per_row=2) == pytest.approx(5 / 8)
    assert lane_utilisation(np.zeros((2, 4)), np.zeros((2, 4)), 10, 1) == 1.0  # no work


def test_same_math_as_the_method_had_and_the_three_modes():
    rng = np.random.default_rng(0)
    planes = rng.integers(0, 9, size=(24, 200)).astype(np.uint8)
    nobs = (planes * rng.integers(1, 3, size=planes.shape)).astype(np.uint8)
    for latency, board in ((24, 32), (24, 1), (5, 4)):
        assert lane_utilisation(planes, planes, latency, board) == pytest.approx(
            _reference(planes, planes, latency, board))
    lanes = BitSerialLanes()
    u = sampled_lane_utilisation(planes, nobs, lanes, head_dim=64)
    assert u.out_of_order == pytest.approx(_reference(planes, planes, 24, 32))
    assert u.in_order == pytest.approx(_reference(planes, planes, 24, 1))
    assert u.out_of_order_without_bs == pytest.approx(_reference(nobs, planes, 24, 32))
    assert u.in_order < u.out_of_order <= 1 and u.rows == int((planes > 0).any(axis=1).sum())
    # a 128-dim key takes two cycles per plane: more work per plane hides more latency
    wide = sampled_lane_utilisation(planes, nobs, lanes, head_dim=128, sampled_head_dim=64)
    assert wide.in_order == pytest.approx(_reference(2 * planes.astype(int), planes, 24, 1))
    assert wide.out_of_order_without_bs == pytest.approx(_reference(2 * nobs.astype(int), planes, 24, 32))
    with pytest.raises(ValueError, match="must be equal 2-D"):
        sampled_lane_utilisation(planes, nobs[:3], lanes, 64)


def test_the_bundled_trace_matches_the_papers_regime():
    u = trace_lane_utilisation(load_trace("pade"), load_arch("pade").units[0].lanes, head_dim=64)
    assert u is not None and u.rows > 100
    assert u.out_of_order > 0.9 and u.in_order < 0.1  # PADE: BS-OOE is what keeps the lanes busy


def _pade_trace(samples):
    trace = load_trace("pade")
    trace.samples = samples
    return trace


def test_the_simulator_uses_the_modelled_utilisation_and_falls_back_without_samples():
    pade = load_arch("pade")
    lanes = pade.units[0]
    fallback = simulate(pade, _pade_trace({}), LLAMA_2K)
    assert any(f"fixed utilisation {lanes.utilisation}" in n for n in fallback.notes)
    # a hand-built sample: every row fetches 8 planes of every key; a 4-entry scoreboard cannot hide 24 cycles
    planes = np.full((4, 256), 8, dtype=np.uint8)
    few = with_overrides(pade, {"units.qk_lanes.lanes.scoreboard": 4})
    modelled = simulate(few, _pade_trace({PLANES: planes, LEGACY_WORK_NOBS: planes}), LLAMA_2K)
    per_lane = 8 * 2 * 16  # 16 keys per lane x 8 planes x 2 slices of a 128-dim key
    expected = per_lane / ((per_lane + 8 * 16 * 24) / 4)
    assert any(f"modelled from 4 sampled rows: {expected:.3f} out-of-order" in n for n in modelled.notes)
    # Q.K runs only on the lanes: its busy cycles scale with 1 / utilisation
    assert modelled.stage_cycles["qk"] == pytest.approx(fallback.stage_cycles["qk"] * lanes.utilisation / expected)
    real = simulate(pade, load_trace("pade"), LLAMA_2K)
    assert real.latency_s < fallback.latency_s  # ~0.96 modelled vs the paper's 0.78 average


def test_work_without_bidirectional_sparsity_counted_by_hand():
    # two keys, group 8 (a GSAT pass takes 4 active elements of a sub-group): key 0 had two slices whose busiest
    # sub-group had 3 active elements and one at 5 (2 passes); key 1 one slice at 8 (2 passes) and one at 1
    busiest = np.zeros((1, 2 * 8), dtype=np.int64)
    busiest[0, 2], busiest[0, 4], busiest[0, 8 + 7], busiest[0, 8 + 0] = 2, 1, 1, 1
    assert work_without_bs(busiest, keys=2).tolist() == [[2 + 2, 2 + 1]]
    assert work_without_bs(np.ones((3, 4 * 3), dtype=np.int64), keys=4).tolist() == [[6.0] * 4] * 3  # group 3: 1+2+3
    with pytest.raises(ValueError, match=r"must be 2-D \[rows, keys x group\] for 5 keys"):
        work_without_bs(busiest, keys=5)


def _old_method_cycles(k: torch.Tensor, group: int) -> torch.Tensor:
    """Lane cycles per (KV head, key, plane) without bidirectional sparsity, as PADE's method computed them before
    the rule moved to hw (its ``_plane_cycles``), from the keys themselves."""
    active = active_elements(quantize_symmetric(k, 8, "tensor").values, 8, group, bidirectional=False)[0]
    per_slice = max(1, 64 // group)
    c = torch.ceil(active.double() / max(1, group // 2))
    c = torch.nn.functional.pad(c, (0, 0, 0, (-c.shape[-2]) % per_slice)).unflatten(-2, (-1, per_slice))
    return c.amax(dim=-2).sum(dim=-2)  # [Hkv, keys, bits]


@pytest.mark.parametrize("d, group", [(32, 8), (128, 8), (64, 4), (48, 3)])
def test_a_fresh_trace_gives_the_cycles_the_method_used_to_count(d, group):
    """The method now records counts (busiest sub-groups) and hw the pass rule: same cycles per (row, key)."""
    q, k, v = random_qkv(h=4, hkv=2, nq=64, nk=64, d=d, spread=2.0, seed=group)
    w = sparseattn.attention(q, k, v, "pade", causal=True, group=group, tile=64).trace
    planes = w.samples[PLANES].astype(np.int64)  # one block of 64 rows: row 0 of each of the 4 heads
    assert planes.shape == (4, 64) and w.samples[BUSIEST_NOBS].shape == (4, 64 * group)
    cycles = _old_method_cycles(k, group).repeat_interleave(2, dim=0)  # [H, keys, bits]
    prefix = torch.nn.functional.pad(torch.cumsum(cycles, dim=-1), (1, 0))  # cycles of the first p planes
    expected = prefix.gather(-1, torch.as_tensor(planes)[..., None])[..., 0].numpy()
    assert np.array_equal(work_without_bs(w.samples[BUSIEST_NOBS], 64), expected) and expected.sum() > 0
