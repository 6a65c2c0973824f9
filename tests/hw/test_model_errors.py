"""The hardware-model errors of issue 12 (evaluation audit): each a physical fact the simulator must respect.

Every test failed on the simulator as it was before issue 12 (checked against ``git archive HEAD``); the before
and after numbers are in the issue's closing note and ``docs/reproduce.md``.
"""

import pytest

from sparseattn.core import Shape
from sparseattn.hw import load_arch, load_model_shape, load_trace, simulate, with_overrides
from sparseattn.hw.gpu import simulate_gpu

LLAMA = load_model_shape("llama2-7b")


def _decode(batch: int, context: int) -> Shape:
    return Shape(batch=batch, heads=32, kv_heads=32, q_len=1, k_len=context, head_dim=128, causal=True, layers=32)


# (1) ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("batch", [1, 8])
def test_pade_decode_reads_at_least_the_msb_plane_of_every_live_key(batch):
    shape = _decode(batch, 2048)
    r = simulate(load_arch("pade"), load_trace("pade"), shape)
    msb_plane = shape.layers * shape.batch * shape.kv_heads * shape.k_len * shape.head_dim / 8
    assert r.dram_bytes["k"] >= msb_plane


def test_pade_k_planes_are_not_divided_by_a_gqa_group_the_target_does_not_have():
    """The SmolLM2 trace shares K planes over 3 query heads; Llama2-7B (MHA) shares them over none, so its K-plane
    bytes per key cannot be lower than the trace's per KV head."""
    trace = load_trace("pade")
    src = trace.shape
    per_key_src = trace.extra_reads["k_bit_planes"] / (src.layers * src.kv_heads * src.valid_pairs_per_head)
    shape = LLAMA.shape(1024)
    arch = with_overrides(load_arch("pade"), {"mapping.kv_residency": "never"})
    r = simulate(arch, trace, shape)
    per_key = r.dram_bytes["k"] / (shape.layers * shape.kv_heads * shape.valid_pairs_per_head)
    assert per_key >= 0.9 * per_key_src


# (2) ------------------------------------------------------------------------------------------------------------
def test_pade_keeps_surviving_v_on_chip_where_it_fits():
    """At 1536 tokens one head's INT8 K (192 KB) stays on chip and an 8-row group's surviving V (~90 KB) fits in
    the rest of the 320 KB buffer, though all of V (192 KB more) does not: each V row is read once."""
    shape = LLAMA.shape(1536)
    r = simulate(load_arch("pade"), load_trace("pade"), shape)
    int8_v = shape.layers * shape.kv_heads * shape.k_len * shape.head_dim
    assert r.dram_bytes["v"] <= 1.01 * int8_v  # at most one read of V, not one per 8-row query group


def test_pade_rereads_v_when_the_survivors_do_not_fit():
    shape = LLAMA.shape(32768).replace(layers=1)
    r = simulate(load_arch("pade"), load_trace("pade"), shape)
    assert r.dram_bytes["v"] > 1.5 * shape.kv_heads * shape.k_len * shape.head_dim


# (3) ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("arch", "read", "bits"), [("energon", "round2_key_bits", 2), ("spatten", "lsb_refetch", 6)])
def test_refetches_are_shared_by_the_rows_of_a_query_tile(arch, read, bits):
    """A key's extra bits are fetched once per query tile that needs them, never once per (query, key) pair: at
    most ``query tiles x K at those bits``."""
    shape = LLAMA.shape(2048)
    r = simulate(load_arch(arch), load_trace(arch), shape)
    tiles = shape.q_len // 16  # the finest query tile any mapping uses (the profile's base tile)
    bound = tiles * shape.layers * shape.kv_heads * shape.k_len * shape.head_dim * bits / 8
    assert r.dram_bytes[read] <= bound


# (4) ------------------------------------------------------------------------------------------------------------
def test_area_efficiency_scales_areas_to_the_common_node():
    from sparseattn.report.sota import simulated_row

    row = simulated_row("sanger", "llama2-7b", 512)
    assert row.gops_per_mm2 == pytest.approx(row.gops / (row.area_mm2 * (28 / 55) ** 2), rel=1e-9)


# (5) ------------------------------------------------------------------------------------------------------------
def test_sofa_generates_kv_on_chip_from_the_tokens():
    arch = with_overrides(load_arch("sofa"), {"operands.kv_source": "generated"})
    shape = LLAMA.shape(512)
    r = simulate(arch, load_trace("sofa"), shape)
    assert r.utilisation["kv_gen"] > 0 and r.stage_cycles["kvgen"] > 0
    assert "k" not in r.dram_bytes and "v" not in r.dram_bytes and r.dram_bytes["x"] > 0


# (6) ------------------------------------------------------------------------------------------------------------
def test_dlzs_is_priced_at_the_width_of_sofas_shift_add_datapath():
    r = simulate(load_arch("sofa"), load_trace("sofa"), LLAMA.shape(512))
    dlzs = [e for e in r.energy if e.component == "dlzs"]
    assert dlzs and all(e.bits <= 16 for e in dlzs)


# (7) ------------------------------------------------------------------------------------------------------------
def test_gpu_cannot_fill_its_sms_with_bert_at_512_tokens_and_batch_1():
    a100 = load_arch("a100")
    shape = load_model_shape("bert-base").shape(512)  # 12 heads x 4 query blocks = 48 blocks for 108 SMs
    r = simulate_gpu(a100, shape)
    attained = r.dense_ops / r.latency_s / (a100.peak_tflops["bf16"] * 1e12)
    assert attained <= 48 / 108 * a100.compute_efficiency + 1e-9


def test_gpu_energy_is_not_the_board_limit_for_the_whole_run():
    a100 = load_arch("a100")
    r = simulate_gpu(a100, load_model_shape("bert-base").shape(512))
    assert r.power_w < a100.board_power_w
    dyn = simulate_gpu(a100.model_copy(update={"energy": "dynamic"}), load_model_shape("bert-base").shape(512))
    assert dyn.energy_j < r.energy_j


def test_gpu_kernels_pay_their_launch():
    a100 = load_arch("a100").model_copy(update={"launch_overhead_us": 50.0})
    shape = load_model_shape("bert-base").shape(128)
    assert simulate_gpu(a100, shape).latency_s >= shape.layers * 50e-6


def test_stacked_pade_traces_carry_every_layers_read_counts():
    """A model's layers stack into one trace (``sum``): PADE's bit-plane counts add with them, so the stacked trace
    simulates (the main job's hardware step) and matches the per-layer counts."""
    import torch

    from sparseattn import attention
    from sparseattn.core.records import BitplaneReads

    torch.manual_seed(0)
    q, k, v = torch.randn(1, 4, 128, 64), torch.randn(1, 2, 128, 64), torch.randn(1, 2, 128, 64)
    layers = [attention(q, k * (1 + i), v, "pade", causal=True).trace for i in range(3)]
    stacked = sum(layers)
    counts = stacked.record(BitplaneReads)
    assert counts.valid_pairs == stacked.shape.valid_pairs
    assert counts.k_planes == pytest.approx(sum(t.record(BitplaneReads).k_planes for t in layers))
    r = simulate(load_arch("pade"), stacked, LLAMA.shape(1024))
    assert r.latency_s > 0 and r.dram_bytes["k"] > 0


def test_models_ask_for_records_and_fail_clearly_without_them():
    """No default stands in for a missing record: the stage-isolated baseline needs SADS's Tc, the bit-plane model
    PADE's read counts; and a stacked trace with differing per-layer Tc has no single one."""
    from sparseattn.core.records import MissingRecordError, RecordError, SadsSetting
    from sparseattn.hw import load_trace
    from sparseattn.hw.spatial.baselines import global_topk_factor

    star = load_trace("star")
    assert star.record(SadsSetting).tc == [4] * star.shape.layers  # the bundled trace, upgraded from format 2
    assert global_topk_factor(star, 4096) > 1
    bare = load_trace("star")
    bare.records.clear()
    with pytest.raises(MissingRecordError, match=r"stage-isolated baseline's global top-k .* needs the SadsSetting"):
        global_topk_factor(bare, 4096)
    mixed = load_trace("star")
    mixed.records["sads_setting"] = SadsSetting(k=[0.1, 0.2], tc=[4, 8], bc=[256, 128], r=[1.0, 1.0])
    with pytest.raises(RecordError, match=r"needs one SADS tc for the whole trace; its layers use \[4, 8\]"):
        global_topk_factor(mixed, 4096)
