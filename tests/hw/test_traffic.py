import pytest

from sparseattn import attention
from sparseattn.hw import ConfigError, Tile
from sparseattn.hw.tiling import project
from sparseattn.hw.traffic import buffer_needs, check_fit, residency, traffic
from tests.helpers import random_qkv
from tests.hw.conftest import tiny_arch

D, N = 64, 256
TILE_BYTES = 64 * D * 2  # one 64-key tile of K (or V) at 16 bits
T64 = Tile(q=64, k=64)


def _traffic(arch, trace, mapping=None):
    mapping = mapping or arch.mapping
    return traffic(arch, mapping, trace, project(trace, trace.shape, mapping.formal))


def test_dense_traffic_of_a_known_tiling_by_hand(dense_trace):
    arch = tiny_arch()  # 40 KB K/V buffer: one head's K+V (64 KB) does not fit, so K/V stream per query tile
    t = _traffic(arch, dense_trace)
    heads, q_tiles, k_tiles = 2, N // 64, N // 64
    assert t.resident == {"k": False, "v": False}
    assert t.dram_bytes["q"] == heads * N * D * 2 == t.dram_bytes["o"]
    assert t.dram_bytes["k"] == pytest.approx(heads * q_tiles * k_tiles * TILE_BYTES)
    assert t.dram_bytes["v"] == pytest.approx(heads * q_tiles * k_tiles * TILE_BYTES)
    assert t.per_cell.sum() == pytest.approx(sum(t.dram_bytes.values()))


def test_gqa_sharing_and_residency_cut_traffic_as_stated(dense_trace):
    shared = _traffic(tiny_arch(gqa_share=True), dense_trace)
    assert shared.dram_bytes["k"] == pytest.approx(1 * 4 * 4 * TILE_BYTES)  # two heads read their KV head once
    big = tiny_arch().model_copy(update={"buffers": [b.model_copy(update={"kb": 512}) for b in tiny_arch().buffers]})
    resident = _traffic(big, dense_trace)
    assert resident.resident == {"k": True, "v": True}
    assert resident.dram_bytes["k"] == pytest.approx(2 * N * D * 2)  # each head's K once
    never = big.mapping.model_copy(update={"kv_residency": "never"})
    assert residency(big, dense_trace.shape, never) == {"k": False, "v": False}
    streamed = _traffic(big, dense_trace, never)
    assert streamed.dram_bytes["k"] == pytest.approx(2 * 4 * 4 * TILE_BYTES)


@pytest.fixture(scope="module")
def block_sparse():
    q, k, v = random_qkv(h=2, hkv=1, nq=N, nk=N, d=D, seed=3)
    return attention(q, k, v, "block_topk", causal=False, ratio=0.25, block_size=64)


def test_sparse_fetches_follow_the_block_structure(block_sparse):
    r, trace = block_sparse, block_sparse.trace
    ts = project(trace, trace.shape, T64)
    blocks = r.keep[0].reshape(2, 4, 64, 4, 64).any(dim=(2, 4))  # [heads, q tiles, k tiles]
    t = _traffic(tiny_arch(), trace)
    assert t.dram_bytes["k"] == pytest.approx(float(blocks.sum()) * TILE_BYTES)
    assert ts.kept.sum() * ts.multiplicity == pytest.approx(float(r.keep.sum()))
    # prediction reads of every valid tile come on top unless cross-stage reuse folds them into one read
    pred = _traffic(tiny_arch(predict_k_bits=4), trace)
    assert pred.dram_bytes["k_predict"] == pytest.approx(2 * 4 * 4 * 64 * D * 4 / 8)
    reuse = _traffic(tiny_arch(predict_k_bits=16, cross_stage_reuse=True), trace)
    assert "k_predict" not in reuse.dram_bytes and reuse.dram_bytes["k"] == pytest.approx(2 * 4 * 4 * TILE_BYTES)
    assert reuse.dram_bytes["v"] == t.dram_bytes["v"] and not reuse.notes


def test_a_prediction_tile_of_its_own_reads_k_separately(block_sparse):
    trace = block_sparse.trace
    arch = tiny_arch(predict_k_bits=16, cross_stage_reuse=True)
    apart = arch.mapping.model_copy(update={"predict": Tile(q=128, k=64)})
    t = _traffic(arch, trace, apart)
    # no reuse: formal K for kept tiles as without a predictor, plus the predictor's scan with 128-row query tiles
    plain = _traffic(tiny_arch(), trace)
    assert t.dram_bytes["k"] == pytest.approx(plain.dram_bytes["k"])
    assert t.dram_bytes["k_predict"] == pytest.approx(2 * 2 * 4 * TILE_BYTES)  # 2 heads x 2 query tiles x 4 K tiles
    assert "predictor's K read is separate" in t.notes[0]
    bigger = arch.mapping.model_copy(update={"predict": Tile(q=16, k=16)})
    assert _traffic(arch, trace, bigger).dram_bytes["k_predict"] == pytest.approx(2 * 16 * N * D * 2)


def test_a_tiling_that_does_not_fit_says_by_how_much(dense_trace):
    arch = tiny_arch()
    shape = dense_trace.shape
    assert check_fit(arch, shape, arch.mapping) == buffer_needs(arch, shape, arch.mapping)
    wide = arch.mapping.with_formal(k=256)
    with pytest.raises(ConfigError, match=r"the formal tile \(mapping.formal: q=64, k=256; head_dim 64\) does not "
                                          r"fit 'tiny': q\+o\+scores need 56.0 KB in buffer\(s\) qo of 40.0 KB, over "
                                          r"by 16.0 KB"):
        check_fit(arch, shape, wide)  # the 64 x 256 score tile overflows first
    roomy = arch.model_copy(update={"buffers": [arch.buffers[0], arch.buffers[1].model_copy(update={"kb": 64})]})
    with pytest.raises(ConfigError, match=r"k\+v need 128.0 KB in buffer\(s\) kv of 40.0 KB, over by 88.0 KB"):
        check_fit(roomy, shape, wide)
    predictor = tiny_arch(predict_k_bits=16)
    with pytest.raises(ConfigError, match=r"the predict tile \(mapping.predict: q=64, k=512"):
        check_fit(predictor, shape, predictor.mapping.model_copy(update={"predict": Tile(q=64, k=512)}))
    single = arch.mapping.model_copy(update={"double_buffered": False})
    assert buffer_needs(arch, shape, single)["k"] == buffer_needs(arch, shape, arch.mapping)["k"] / 2


def test_replaced_reads_must_exist_in_the_trace(dense_trace):
    arch = tiny_arch(replace_reads={"k": "k_bit_planes"})
    with pytest.raises(ConfigError, match="extra read 'k_bit_planes', which this 'dense' trace does not have"):
        _traffic(arch, dense_trace)
