import numpy as np
import pytest

from sparseattn import attention
from sparseattn.core import Shape
from sparseattn.hw import ConfigError, Tile
from sparseattn.hw.tiling import _fetch_probability, project, valid_tile_fraction
from tests.helpers import random_qkv

D, N = 64, 256


def test_projection_keeps_density_and_counts_causal_pairs_exactly():
    q, k, v = random_qkv(h=2, hkv=1, nq=N, nk=N, d=D, seed=1)
    trace = attention(q, k, v, "topk", causal=True, ratio=0.2).trace
    same = project(trace, trace.shape, Tile(q=32, k=64))
    assert same.valid.sum() == trace.shape.valid_pairs_per_head
    assert same.density == pytest.approx(trace.density, rel=1e-9)
    big = Shape(batch=1, heads=8, kv_heads=2, q_len=3000, k_len=3000, head_dim=128, causal=True, layers=4)
    far = project(trace, big, Tile(q=128, k=64))
    assert far.valid.sum() == big.valid_pairs_per_head  # ragged last tile included
    assert far.density == pytest.approx(trace.density, rel=0.05)
    assert far.multiplicity == big.instances / 2
    assert far.kept.shape[1] <= 64 and far.kept.shape[2] <= 64  # bundled cells
    with pytest.raises(ConfigError, match="is causal but the model shape is bidirectional"):
        project(trace, big.replace(causal=False), Tile(q=64, k=64))


def test_valid_keys_of_another_tile_on_the_same_cells():
    q, k, v = random_qkv(h=2, hkv=1, nq=N, nk=N, d=D, seed=1)
    trace = attention(q, k, v, "topk", causal=True, ratio=0.2).trace
    ts = project(trace, trace.shape, Tile(q=64, k=64))
    assert np.array_equal(ts.valid_keys(Tile(q=64, k=64)), ts.valid_keys())
    # a 4x4 grid of 64-token tiles, causal: 10 of 16 tiles hold valid pairs, 64 keys each, per query tile
    assert ts.valid_keys().sum() == pytest.approx(10 * 64)
    # finer tiles cut the causal edge closer: the pairs they cover lie between the valid pairs and the coarse cover
    covered = ts.valid_keys(Tile(q=16, k=16)).sum() * 16
    assert trace.shape.valid_pairs_per_head <= covered < ts.valid_keys().sum() * 64
    full = project(attention(q, k, v, "topk", causal=False, ratio=0.2).trace,
                   trace.shape.replace(causal=False), Tile(q=64, k=64))
    assert full.valid_keys(Tile(q=32, k=128)).sum() == pytest.approx(4 * 2 * N)  # 2 query tiles per cell row


def test_valid_tile_fraction():
    valid = np.array([[64 * 64, 0.0, 64 * 65 / 2]])
    rows, keys = np.array([64]), np.array([64, 64, 64])
    frac = valid_tile_fraction(valid, rows, keys, np.array([1]), np.array([1, 1, 1]))
    assert frac.tolist() == [[1.0, 0.0, 1.0]]  # one tile per cell: a partly valid tile is read whole
    quarter = valid_tile_fraction(valid, rows, keys, np.array([4]), np.array([4, 4, 4]))
    assert quarter[0, 2] == pytest.approx(65 / 128 + 1 / 4)  # estimated (exactly: 10 of 16)


def test_fetch_probability_is_exact_for_one_tile_and_sane_otherwise():
    n, span, rho = np.array([16.0, 16.0, 16.0]), np.array([16.0, 16.0, 4.0]), np.zeros(3)
    p = _fetch_probability(np.array([0.0, 1.0, 4.0]), n, span, rho, 64)
    assert p[0] == 0 and p[1] == pytest.approx(1.0)  # one tile covering all 16: fetched iff any is non-empty
    assert 0.25 < p[2] < 1  # 4 of 16 non-empty, tiles of 4: more than the single-tile chance
    small = _fetch_probability(np.array([8.0]), np.array([16.0]), np.array([0.25]), np.array([0.5]), 4)
    assert small[0] == pytest.approx(0.5 * (1 - 0.5**4))
