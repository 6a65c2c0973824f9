"""The ``star_gpu`` method and the pipeline: the reference's selection and output, through the public API, the
decode path, the custom ops under ``torch.compile``, and the errors."""

from __future__ import annotations

import pytest
import torch

import sparseattn
from sparseattn.kernels._runtime import KernelUnavailableError, require_runtime

from .helpers import qkv

PARAMS = {"block_q": 16, "block_k": 16, "ratio": 0.4, "local_blocks": 1}


@pytest.mark.parametrize(("b", "causal", "nq", "nk", "extra"), [
    (2, True, 45, 45, {}),
    (1, False, 20, 57, {"predictor": "pooled", "group_shared": False}),
    (1, True, 30, 50, {"predictor": "pade", "mass": 0.8, "ratio": None}),
    (1, True, 48, 48, {"segments": 2, "local_blocks": 0}),
    (1, True, 40, 40, {"block_q": 32, "keep_first": False, "keep_diagonal": False, "local_blocks": 0}),
])
def test_star_gpu_matches_star_block(b, causal, nq, nk, extra, device):
    q, k, v = qkv(b, 4, 2, nq, nk, 64, seed=nq, device=device)
    params = {**PARAMS, **extra}
    gpu = sparseattn.attention(q, k, v, "star_gpu", causal=causal, debug_rescales=True, **params)
    ref = sparseattn.attention(q, k, v, "star_block", causal=causal, **params)
    torch.testing.assert_close(gpu.out, ref.out, atol=1e-4, rtol=1e-4)
    assert gpu.kept_pairs == ref.kept_pairs
    assert torch.equal(gpu.keep, ref.keep)
    assert gpu.trace.terms == ref.trace.terms
    assert (gpu.trace.profile.coarsen(16) == ref.trace.profile.coarsen(16)).all()
    assert gpu.trace.meta["rescales_sorted"] == ref.trace.meta["rescales_sorted"]


def test_dense_path_skips_prediction(device):
    q, k, v = qkv(1, 4, 2, 40, 40, 64, seed=2, device=device)
    out = sparseattn.attention(q, k, v, "star_gpu", causal=True, block_q=16, block_k=16, ratio=1.0)
    dense = sparseattn.attention(q, k, v, "dense", causal=True)
    torch.testing.assert_close(out.out, dense.out, atol=1e-4, rtol=1e-4)
    assert out.density == pytest.approx(1.0)
    assert out.trace.count(stage="predict") == 0


def test_selection_is_the_reference(device):
    q, k, v = qkv(2, 4, 2, 32, 32, 64, seed=1, device=device)
    from sparseattn.kernels import star_forward

    res = star_forward(q, k, v, True, **PARAMS)
    ref = sparseattn.select(q, k, method="star_block", causal=True, **PARAMS).blocks(16, 16)
    assert torch.equal(res.selection.kv_num_blocks.repeat_interleave(2, dim=1), ref.kv_num_blocks)
    n = int(ref.kv_num_blocks.max())
    mine = res.selection.kv_indices.repeat_interleave(2, dim=1)
    rank = torch.arange(mine.shape[-1], device=device) < ref.kv_num_blocks[..., None]
    assert torch.equal(torch.where(rank, mine, -1)[..., :n], torch.where(rank, ref.kv_indices, -1)[..., :n])
    assert torch.equal(sparseattn.select(q, k, method="star_gpu", causal=True, **PARAMS).keep,
                       sparseattn.select(q, k, method="star_block", causal=True, **PARAMS).keep)


@pytest.mark.parametrize(("g", "splits"), [(1, None), (4, None), (3, 1)])
def test_decode_against_a_cache(g, splits, device):
    q, k, v = qkv(2, 2 * g, 2, 1, 100, 64, torch.bfloat16, seed=g, device=device)
    gpu = sparseattn.attention(q, k, v, "star_gpu", causal=True, splits=splits, **PARAMS)
    ref = sparseattn.attention(q, k, v, "star_block", causal=True, **PARAMS)
    torch.testing.assert_close(gpu.out.float(), ref.out.float(), atol=2e-2, rtol=2e-2)


def test_index_order_same_output_more_rescales(device):
    q, k, v = qkv(1, 2, 2, 40, 40, 64, seed=4, device=device)
    by_score = sparseattn.attention(q, k, v, "star_gpu", causal=True, debug_rescales=True, **PARAMS)
    by_index = sparseattn.attention(q, k, v, "star_gpu", causal=True, debug_rescales=True, order="index", **PARAMS)
    torch.testing.assert_close(by_score.out, by_index.out, atol=1e-5, rtol=1e-5)
    ref = sparseattn.attention(q, k, v, "star_block", causal=True, **PARAMS)
    assert by_index.trace.meta["rescales_index"] == ref.trace.meta["rescales_index"]


def test_custom_ops_compile_without_graph_breaks(device):
    from sparseattn.kernels import star_attention, star_params

    for name in ("token_block_scores", "pooled_block_scores", "select_blocks", "block_sparse_attention"):
        assert hasattr(torch.ops.sparseattn, name)
    q, k, v = qkv(1, 2, 1, 20, 20, 64, seed=1, device=device)
    p = star_params(**PARAMS)

    def f(q, k, v):
        return star_attention(q, k, v, True, None, params=p)

    compiled = torch.compile(f, backend="aot_eager", fullgraph=True)
    torch.testing.assert_close(compiled(q, k, v), f(q, k, v))


def test_cpu_without_interpreter_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(KernelUnavailableError, match="TRITON_INTERPRET=1"):
        require_runtime(torch.zeros(1))


def test_bad_parameters_rejected(device):
    q, k, v = qkv(1, 2, 2, 32, 32, 64, device=device)
    with pytest.raises(ValueError, match="power of two"):
        sparseattn.attention(q, k, v, "star_gpu", causal=True, block_q=24, block_k=16)
    with pytest.raises(ValueError, match="head_dim must be 64 or 128"):
        sparseattn.attention(q[..., :32], k[..., :32], v[..., :32], "star_gpu", causal=True, **PARAMS)
    with pytest.raises(ValueError, match="debug"):
        sparseattn.attention(q, k, v, "star_gpu", causal=True, debug=True)
