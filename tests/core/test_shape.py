import pytest
from hypothesis import given
from hypothesis import strategies as st

from sparseattn.core import Shape, valid_keys_per_row, valid_mask


@given(st.integers(1, 40), st.integers(0, 40), st.booleans())
def test_valid_pair_count_matches_the_mask(nq, extra, causal):
    nk = nq + extra
    shape = Shape(batch=1, heads=1, kv_heads=1, q_len=nq, k_len=nk, head_dim=8, causal=causal)
    mask = valid_mask(nq, nk, causal)
    assert int(mask.sum()) == shape.valid_pairs_per_head
    assert valid_keys_per_row(nq, nk, causal).tolist() == mask.sum(dim=1).tolist()
    if causal:  # the last query sees every key; row i sees keys up to nk - nq + i
        assert bool(mask[-1].all())
        assert int(mask[0].sum()) == nk - nq + 1


def test_shape_rejects_bad_fields():
    with pytest.raises(ValueError, match="multiple"):
        Shape(batch=1, heads=3, kv_heads=2, q_len=4, k_len=4, head_dim=8, causal=False)
    with pytest.raises(ValueError, match="positive int"):
        Shape(batch=0, heads=1, kv_heads=1, q_len=4, k_len=4, head_dim=8, causal=False)
    with pytest.raises(ValueError, match="q_len <= k_len"):
        Shape(batch=1, heads=1, kv_heads=1, q_len=5, k_len=4, head_dim=8, causal=True)
