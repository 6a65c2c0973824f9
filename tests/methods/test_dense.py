import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

import sparseattn
from sparseattn.core import valid_mask
from tests.helpers import random_qkv


def sdpa(q, k, v, causal, scale=None):
    mask = valid_mask(q.shape[2], k.shape[2], True) if causal else None
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale, enable_gqa=True)


@given(
    b=st.integers(1, 2),
    hkv=st.integers(1, 3),
    group=st.integers(1, 3),
    nq=st.integers(1, 48),
    extra=st.integers(0, 40),
    d=st.sampled_from([8, 16, 64]),
    causal=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_dense_equals_sdpa_fp32(b, hkv, group, nq, extra, d, causal, seed):
    q, k, v = random_qkv(b=b, h=hkv * group, hkv=hkv, nq=nq, nk=nq + extra, d=d, seed=seed, spread=2.0)
    r = sparseattn.attention(q, k, v, "dense", causal=causal)
    assert r.out.shape == q.shape and r.out.dtype == q.dtype
    torch.testing.assert_close(r.out, sdpa(q, k, v, causal), atol=1e-5, rtol=1e-5)
    assert r.density == 1.0
    assert torch.equal(r.keep[0, 0], valid_mask(nq, nq + extra, causal))


def test_dense_with_custom_scale_and_float64():
    q, k, v = random_qkv(nq=20, nk=30, dtype=torch.float64)
    r = sparseattn.attention(q, k, v, "dense", causal=True, scale=0.3)
    torch.testing.assert_close(r.out, sdpa(q, k, v, True, scale=0.3), atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_inputs_compute_in_fp32_and_return_their_dtype(dtype):
    q, k, v = random_qkv(nq=32, nk=32, dtype=dtype)
    r = sparseattn.attention(q, k, v, "dense", causal=True)
    assert r.out.dtype == dtype
    ref = sdpa(q.float(), k.float(), v.float(), True)
    torch.testing.assert_close(r.out.float(), ref, atol=1e-2, rtol=1e-2)
    assert r.trace.ops[("qk", "mac", 16)] > 0  # trace records the 16-bit operand width


def test_decode_single_query_sees_the_whole_cache():
    q, k, v = random_qkv(nq=1, nk=50)
    r = sparseattn.attention(q, k, v, "dense", causal=True)
    assert bool(r.keep.all())
    torch.testing.assert_close(r.out, sdpa(q, k, v, False), atol=1e-6, rtol=1e-5)


@given(nq=st.integers(1, 40), extra=st.integers(0, 30), causal=st.booleans(), seed=st.integers(0, 2**16))
def test_the_materialised_path_of_the_sparse_methods_equals_dense(nq, extra, causal, seed):
    from sparseattn.core.attention import attend_kept, grouped_scores, valid_mask_4d

    q, k, v = random_qkv(h=6, hkv=2, nq=nq, nk=nq + extra, d=16, seed=seed, spread=2.0)
    r = sparseattn.attention(q, k, v, "dense", causal=causal)
    out = attend_kept(grouped_scores(q, k, 0.25), valid_mask_4d(r.trace.shape, q.device), v, q.dtype)
    torch.testing.assert_close(out, r.out, atol=1e-5, rtol=1e-5)
