"""Fuzzing the public entry point: any input either works with consistent shapes or raises ValueError."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import sparseattn

dims = st.integers(0, 5)


@given(
    q_shape=st.lists(dims, min_size=2, max_size=5),
    k_shape=st.lists(dims, min_size=2, max_size=5),
    v_shape=st.lists(dims, min_size=2, max_size=5),
    causal=st.booleans(),
    method=st.sampled_from(["dense", "topk", "threshold", "block_topk"]),
    dtype=st.sampled_from([torch.float32, torch.float64, torch.int64, torch.bool]),
    poison=st.sampled_from([None, float("nan"), float("inf")]),
)
def test_any_input_works_or_raises_value_error(q_shape, k_shape, v_shape, causal, method, dtype, poison):
    tensors = [torch.ones(s, dtype=torch.float64).to(dtype) for s in (q_shape, k_shape, v_shape)]
    if poison is not None and dtype.is_floating_point and tensors[0].numel():
        tensors[0].view(-1)[0] = poison
    try:
        r = sparseattn.attention(*tensors, method=method, causal=causal)
    except ValueError:
        return
    q, k, _ = tensors
    assert r.out.shape == q.shape and r.keep.shape == (*q.shape[:3], k.shape[2])
    assert bool(torch.isfinite(r.out).all())
    assert r.keep.any(dim=-1).all()


def test_scale_changes_the_selection_scale():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 2, 32, 16, generator=g) for _ in range(3))
    a = sparseattn.attention(q, k, v, "threshold", causal=True, delta=1.0)
    b = sparseattn.attention(q, k, v, "threshold", causal=True, delta=1.0, scale=1.0)
    assert b.density < a.density  # larger logits: fewer keys within the same delta


@pytest.mark.parametrize("method", ["dense", "topk", "threshold", "block_topk"])
def test_results_do_not_depend_on_batch_companions(method):
    g = torch.Generator().manual_seed(1)
    q, k, v = (
        torch.randn(3, 4, 40, 16, generator=g),
        torch.randn(3, 2, 40, 16, generator=g),
        torch.randn(3, 2, 40, 16, generator=g),
    )
    full = sparseattn.attention(q, k, v, method, causal=True)
    one = sparseattn.attention(q[1:2], k[1:2], v[1:2], method, causal=True)
    torch.testing.assert_close(full.out[1:2], one.out, atol=1e-6, rtol=1e-6)
    assert torch.equal(full.keep[1:2], one.keep)


@pytest.mark.parametrize(
    ("kw", "needle"),
    [({"layer": -1}, "layer"), ({"layer": True}, "layer"), ({"side": "x"}, "side"), ({"state": []}, "state")],
)
def test_bad_call_context(kw, needle):
    q, k, v = (torch.randn(1, 2, 8, 4) for _ in range(3))
    with pytest.raises(ValueError, match=needle):
        sparseattn.attention(q, k, v, "dense", **kw)
