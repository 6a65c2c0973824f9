import numpy as np
import pytest

from sparseattn import attention
from sparseattn.core import Shape
from sparseattn.hw import ConfigError, Tiling, check_fit, project, traffic
from sparseattn.hw.tiling import _fetch_probability
from tests.helpers import random_qkv
from tests.hw.conftest import tiny_arch

D, N = 64, 256
TILE_BYTES = 64 * D * 2  # one 64-key tile of K (or V) at 16 bits


def test_dense_traffic_of_a_known_tiling_by_hand(dense_trace):
    arch = tiny_arch()  # 40 KB K/V buffer: one head's K+V (64 KB) does not fit, so K/V stream per query tile
    t = traffic(arch, dense_trace, project(dense_trace, dense_trace.shape, Tiling(64, 64)))
    heads, q_tiles, k_tiles = 2, N // 64, N // 64
    assert t.resident == {"k": False, "v": False}
    assert t.dram_bytes["q"] == heads * N * D * 2 == t.dram_bytes["o"]
    assert t.dram_bytes["k"] == pytest.approx(heads * q_tiles * k_tiles * TILE_BYTES)
    assert t.dram_bytes["v"] == pytest.approx(heads * q_tiles * k_tiles * TILE_BYTES)
    assert t.per_cell.sum() == pytest.approx(sum(t.dram_bytes.values()))


def test_gqa_sharing_and_residency_cut_traffic_as_stated(dense_trace):
    ts = project(dense_trace, dense_trace.shape, Tiling(64, 64))
    shared = traffic(tiny_arch(gqa_share=True), dense_trace, ts)
    assert shared.dram_bytes["k"] == pytest.approx(1 * 4 * 4 * TILE_BYTES)  # two heads read their KV head once
    big = tiny_arch().model_copy(update={"buffers": [b.model_copy(update={"kb": 512}) for b in tiny_arch().buffers]})
    resident = traffic(big, dense_trace, ts)
    assert resident.resident == {"k": True, "v": True}
    assert resident.dram_bytes["k"] == pytest.approx(2 * N * D * 2)  # each head's K once


def test_sparse_fetches_follow_the_block_structure():
    q, k, v = random_qkv(h=2, hkv=1, nq=N, nk=N, d=D, seed=3)
    r = attention(q, k, v, "block_topk", causal=False, ratio=0.25, block_size=64)
    trace = r.trace
    ts = project(trace, trace.shape, Tiling(64, 64))
    blocks = r.keep[0].reshape(2, 4, 64, 4, 64).any(dim=(2, 4))  # [heads, q tiles, k tiles]
    t = traffic(tiny_arch(), trace, ts)
    assert t.dram_bytes["k"] == pytest.approx(float(blocks.sum()) * TILE_BYTES)
    assert ts.kept.sum() * ts.multiplicity == pytest.approx(float(r.keep.sum()))
    # prediction reads of every valid tile come on top unless cross-stage reuse folds them into one read
    pred = traffic(tiny_arch(predict_k_bits=4), trace, ts)
    assert pred.dram_bytes["k_predict"] == pytest.approx(2 * 4 * 4 * 64 * D * 4 / 8)
    reuse = traffic(tiny_arch(predict_k_bits=16, cross_stage_reuse=True), trace, ts)
    assert "k_predict" not in reuse.dram_bytes and reuse.dram_bytes["k"] == pytest.approx(2 * 4 * 4 * TILE_BYTES)
    assert reuse.dram_bytes["v"] == t.dram_bytes["v"]


def test_projection_keeps_density_and_counts_causal_pairs_exactly():
    q, k, v = random_qkv(h=2, hkv=1, nq=N, nk=N, d=D, seed=1)
    trace = attention(q, k, v, "topk", causal=True, ratio=0.2).trace
    same = project(trace, trace.shape, Tiling(32, 64))
    assert same.valid.sum() == trace.shape.valid_pairs_per_head
    assert same.density == pytest.approx(trace.density, rel=1e-9)
    big = Shape(batch=1, heads=8, kv_heads=2, q_len=3000, k_len=3000, head_dim=128, causal=True, layers=4)
    far = project(trace, big, Tiling(128, 64))
    assert far.valid.sum() == big.valid_pairs_per_head  # ragged last tile included
    assert far.density == pytest.approx(trace.density, rel=0.05)
    assert far.multiplicity == big.instances / 2
    assert far.kept.shape[1] <= 64 and far.kept.shape[2] <= 64  # bundled cells
    with pytest.raises(ConfigError, match="is causal but the workload is bidirectional"):
        project(trace, big.replace(causal=False), Tiling(64, 64))


def test_fetch_probability_is_exact_for_one_tile_and_sane_otherwise():
    n, span, rho = np.array([16.0, 16.0, 16.0]), np.array([16.0, 16.0, 4.0]), np.zeros(3)
    p = _fetch_probability(np.array([0.0, 1.0, 4.0]), n, span, rho, 64)
    assert p[0] == 0 and p[1] == pytest.approx(1.0)  # one tile covering all 16: fetched iff any is non-empty
    assert 0.25 < p[2] < 1  # 4 of 16 non-empty, tiles of 4: more than the single-tile chance
    small = _fetch_probability(np.array([8.0]), np.array([16.0]), np.array([0.25]), np.array([0.5]), 4)
    assert small[0] == pytest.approx(0.5 * (1 - 0.5**4))


def test_a_tiling_that_does_not_fit_says_by_how_much(dense_trace):
    arch = tiny_arch()
    check_fit(arch, dense_trace.shape, Tiling(64, 64))
    with pytest.raises(ConfigError, match=r"q\+o\+scores need 56.0 KB in buffer\(s\) qo of 40.0 KB, over by 16.0 KB"):
        check_fit(arch, dense_trace.shape, Tiling(64, 256))  # the 64 x 256 score tile overflows first
    roomy = arch.model_copy(update={"buffers": [arch.buffers[0], arch.buffers[1].model_copy(update={"kb": 64})]})
    with pytest.raises(ConfigError, match=r"k\+v need 128.0 KB in buffer\(s\) kv of 40.0 KB, over by 88.0 KB"):
        check_fit(roomy, dense_trace.shape, Tiling(64, 256))
    with pytest.raises(ConfigError, match="positive int"):
        Tiling(0, 64)


def test_replaced_reads_must_exist_in_the_trace(dense_trace):
    arch = tiny_arch(replace_reads={"k": "k_bit_planes"})
    with pytest.raises(ConfigError, match="extra read 'k_bit_planes', which this 'dense' trace does not have"):
        traffic(arch, dense_trace, project(dense_trace, dense_trace.shape, Tiling(64, 64)))
