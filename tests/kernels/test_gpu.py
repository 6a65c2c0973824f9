"""GPU-only checks at realistic sizes (``TRITON_INTERPRET=0`` on a CUDA machine; skipped otherwise): the compiled
kernels against the reference, against compiled FlexAttention on the same blocks, and inside an Inductor graph."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import sparseattn

from .helpers import qkv

pytestmark = pytest.mark.gpu
PARAMS = {"block_q": 128, "block_k": 64, "ratio": 0.25}


@pytest.mark.parametrize(("causal", "h", "hkv", "d"), [(True, 8, 2, 128), (False, 4, 4, 64), (True, 6, 2, 64)])
def test_bf16_prefill_matches_reference(causal, h, hkv, d):
    q, k, v = qkv(2, h, hkv, 1500, 1500, d, torch.bfloat16, device="cuda")
    gpu = sparseattn.attention(q, k, v, "star_gpu", causal=causal, **PARAMS)
    ref = sparseattn.attention(q, k, v, "star_block", causal=causal, **PARAMS)
    torch.testing.assert_close(gpu.out.float(), ref.out.float(), atol=2e-2, rtol=2e-2)
    assert gpu.kept_pairs == ref.kept_pairs


def test_flex_on_the_same_blocks_agrees():
    from sparseattn.kernels import flex_block_attention, star_forward

    q, k, v = qkv(1, 8, 2, 2048, 2048, 128, torch.bfloat16, device="cuda")
    res = star_forward(q, k, v, True, **PARAMS)
    flex = flex_block_attention(q, k, v, res.selection, True)
    torch.testing.assert_close(flex.float(), res.out.float(), atol=2e-2, rtol=2e-2)


def test_dense_ratio_matches_sdpa_decode():
    q, k, v = qkv(4, 32, 8, 1, 8192, 128, torch.bfloat16, device="cuda")
    out = sparseattn.attention(q, k, v, "star_gpu", causal=True, ratio=1.0, block_q=16, block_k=64).out
    ref = F.scaled_dot_product_attention(q, k, v, enable_gqa=True)
    torch.testing.assert_close(out.float(), ref.float(), atol=2e-2, rtol=2e-2)


def test_inductor_graph_without_breaks():
    from sparseattn.kernels import star_attention, star_params

    q, k, v = qkv(1, 8, 2, 1024, 1024, 128, torch.bfloat16, device="cuda")
    p = star_params(**PARAMS)

    def f(q, k, v):
        return star_attention(q, k, v, True, None, params=p) * 2

    torch.testing.assert_close(torch.compile(f, fullgraph=True)(q, k, v), f(q, k, v))
