"""Block-sparse attention kernel against the ``star_block`` reference with the same selection (fp32 within 1e-4,
bf16/fp16 within 2e-2), its rescale counter against the reference count, and input checks."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import sparseattn
from sparseattn.core.validation import validate_qkv
from sparseattn.methods.blocksparse import visit_rescales

from .helpers import TOL, qkv


def _selection(q, k, causal, **params):
    """The reference's selection and output; the selection with one list per selection head."""
    sparseattn.attention(q, k, k, "star_block", causal=causal, **params)
    bq, bk = params["block_q"], params["block_k"]
    sel = sparseattn.select(q, k, method="star_block", causal=causal, **params).blocks(bq, bk)
    num, idx = sel.kv_num_blocks, sel.kv_indices
    if params.get("group_shared", True):
        g = q.shape[1] // k.shape[1]
        num, idx = num[:, ::g].contiguous(), idx[:, ::g].contiguous()
    return num, idx


def _reference(q, k, v, causal, params):
    return sparseattn.attention(q, k, v, "star_block", causal=causal, **params)


cases = st.fixed_dictionaries({
    "b": st.integers(1, 2),
    "hkv": st.integers(1, 2),
    "g": st.sampled_from([1, 2, 3]),
    "nq": st.integers(1, 45),
    "extra": st.integers(0, 30),
    "causal": st.booleans(),
    "shared": st.booleans(),
    "ratio": st.sampled_from([0.3, 1.0]),
    "dtype": st.sampled_from([torch.float32, torch.bfloat16, torch.float16]),
    "splits": st.sampled_from([1, 1, 3]),
})


@settings(max_examples=8)
@given(c=cases)
def test_attention_equals_reference(c, device):
    q, k, v = qkv(c["b"], c["hkv"] * c["g"], c["hkv"], c["nq"], c["nq"] + c["extra"], 64, c["dtype"],
                  seed=c["nq"], device=device)
    params = {"block_q": 16, "block_k": 16, "ratio": c["ratio"], "group_shared": c["shared"], "local_blocks": 1}
    num, idx = _selection(q, k, c["causal"], **params)
    ref = _reference(q, k, v, c["causal"], params)
    from sparseattn.kernels.attention import block_sparse_attention

    out, _ = block_sparse_attention(q, k, v, num, idx, 16, 16, c["causal"], splits=c["splits"])
    assert out.dtype == q.dtype and out.shape == q.shape
    torch.testing.assert_close(out.float(), ref.out.float(), atol=TOL[c["dtype"]], rtol=TOL[c["dtype"]])


@pytest.mark.parametrize("d", [64, 128])
def test_head_dims_and_rescale_count(d, device):
    q, k, v = qkv(2, 4, 2, 50, 70, d, seed=3, device=device)
    params = {"block_q": 16, "block_k": 16, "ratio": 0.5, "local_blocks": 1}
    num, idx = _selection(q, k, True, **params)
    from sparseattn.kernels.attention import block_sparse_attention

    out, resc = block_sparse_attention(q, k, v, num, idx, 16, 16, True, count_rescales=True)
    ref = _reference(q, k, v, True, params)
    torch.testing.assert_close(out, ref.out, atol=1e-4, rtol=1e-4)
    assert resc.shape == (2, 4, 50) and resc.dtype == torch.int32
    assert int(resc.sum()) == ref.trace.meta["rescales_sorted"]


def test_sorted_order_saves_rescales(device):
    """On local attention (logits fall with distance, as RoPE makes them), visiting blocks by predicted score needs
    fewer rescales than key order -- which raises the running maximum towards the diagonal -- and the kernel
    counts exactly what the reference counts."""
    _, _, v = qkv(1, 2, 2, 96, 96, 64, seed=5, device=device)
    t = torch.arange(96, dtype=torch.float32)[:, None] * torch.linspace(0.005, 0.03, 32)[None, :]
    x = (torch.cat([t.cos(), t.sin()], dim=-1) * 1.2).expand(1, 2, 96, 64).to(device)
    q, k = x.contiguous(), x.contiguous()
    params = {"block_q": 16, "block_k": 16, "ratio": 0.6, "local_blocks": 1}
    num, idx = _selection(q, k, True, **params)
    from sparseattn.kernels.attention import block_sparse_attention

    _, by_score = block_sparse_attention(q, k, v, num, idx, 16, 16, True, count_rescales=True)
    by_index = torch.sort(torch.where(torch.arange(idx.shape[-1], device=device) < num[..., None], idx, 1 << 20),
                          dim=-1).values.clamp(max=idx.shape[-1] - 1).to(torch.int32)
    _, in_key_order = block_sparse_attention(q, k, v, num, by_index, 16, 16, True, count_rescales=True)
    ref = _reference(q, k, v, True, params)
    assert int(by_score.sum()) == ref.trace.meta["rescales_sorted"]
    assert int(in_key_order.sum()) == ref.trace.meta["rescales_index"]
    assert int(by_score.sum()) < int(in_key_order.sum())


def test_packed_gqa_equals_per_head(device):
    q, k, v = qkv(1, 4, 1, 40, 40, 64, seed=2, device=device)
    params = {"block_q": 16, "block_k": 16, "ratio": 0.5, "local_blocks": 1}
    num, idx = _selection(q, k, True, **params)
    from sparseattn.kernels.attention import block_sparse_attention

    packed, _ = block_sparse_attention(q, k, v, num, idx, 16, 16, True, pack=True)
    per_head, _ = block_sparse_attention(q, k, v, num, idx, 16, 16, True, pack=False)
    torch.testing.assert_close(packed, per_head, atol=1e-5, rtol=1e-5)


def test_empty_rows_are_zero(device):
    q, k, v = qkv(1, 1, 1, 32, 32, 64, device=device)
    num = torch.zeros(1, 1, 2, dtype=torch.int32, device=device)
    idx = torch.arange(2, dtype=torch.int32, device=device).expand(1, 1, 2, 2).contiguous()
    from sparseattn.kernels.attention import block_sparse_attention

    out, _ = block_sparse_attention(q, k, v, num, idx, 16, 16, True)
    assert torch.equal(out, torch.zeros_like(out))


def test_visit_rescales_definition():
    tiles = torch.tensor([[1.0, 3.0, float("-inf"), 2.0, 5.0]])
    assert visit_rescales(tiles, None).tolist() == [2]
    assert visit_rescales(tiles, torch.tensor([[4, 1, 0, 3, 2]])).tolist() == [0]
    assert validate_qkv  # imported for the shape checks used above


def test_bad_inputs_rejected(device):
    from sparseattn.kernels.attention import block_sparse_attention

    q, k, v = qkv(1, 2, 1, 32, 32, 64, device=device)
    num = torch.ones(1, 1, 2, dtype=torch.int32, device=device)
    idx = torch.zeros(1, 1, 2, 2, dtype=torch.int32, device=device)
    with pytest.raises(ValueError, match="head_dim must be 64 or 128"):
        block_sparse_attention(q[..., :32], k[..., :32], v[..., :32], num, idx, 16, 16, True)
    with pytest.raises(ValueError, match="dtype"):
        block_sparse_attention(q.double(), k.double(), v.double(), num, idx, 16, 16, True)
    with pytest.raises(ValueError, match="share one dtype"):
        block_sparse_attention(q.half(), k, v, num, idx, 16, 16, True)
    with pytest.raises(ValueError, match="block_q"):
        block_sparse_attention(q, k, v, num, idx, 24, 16, True)
    with pytest.raises(ValueError, match="kv_indices"):
        block_sparse_attention(q, k, v, num, idx[..., :1], 16, 16, True)
    with pytest.raises(ValueError, match="int32"):
        block_sparse_attention(q, k, v, num.long(), idx, 16, 16, True)
    with pytest.raises(ValueError, match="heads"):
        block_sparse_attention(q, k, v, num.expand(1, 3, 2).contiguous(), idx.expand(1, 3, 2, 2).contiguous(),
                               16, 16, True)
    with pytest.raises(ValueError, match="q_len <= k_len"):
        block_sparse_attention(q, k[:, :, :16], v[:, :, :16], num[..., :2], idx[..., :1], 16, 16, True)
