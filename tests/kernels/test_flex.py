"""``BlockSelection`` <-> FlexAttention ``BlockMask``, and any method's selection run through FlexAttention
(eager on CPU: a slow but exact reference of the compiled GPU path)."""

from __future__ import annotations

import pytest
import torch

import sparseattn
from sparseattn.core.attention import grouped_pv, grouped_scores, masked_softmax_
from sparseattn.core.shape import valid_mask

from .helpers import qkv


def _block_reference(q, k, v, sel, causal):
    """Softmax over every valid pair of the kept blocks (PyTorch)."""
    keep = sel.mask().repeat_interleave(q.shape[1] // sel.kv_num_blocks.shape[1], dim=1)
    keep = keep & valid_mask(q.shape[2], k.shape[2], causal, q.device)
    s = grouped_scores(q, k, q.shape[-1] ** -0.5)
    return grouped_pv(masked_softmax_(s, keep), v)


@pytest.mark.filterwarnings("ignore:flex_attention called without torch.compile")
@pytest.mark.parametrize(("method", "params", "causal", "nq", "nk"), [
    ("star_block", {"block_q": 16, "block_k": 16, "ratio": 0.4, "local_blocks": 1}, True, 40, 40),
    ("topk", {"ratio": 0.2}, True, 33, 70),
    ("sofa", {}, False, 48, 48),
])
def test_round_trip_and_flex_attention(method, params, causal, nq, nk):
    from sparseattn.kernels.flex import flex_block_attention, from_block_mask, to_block_mask

    q, k, v = qkv(2, 4, 2, nq, nk, 32, seed=nq)
    sel = sparseattn.select(q, k, method=method, causal=causal, **params)
    blocks = sel.blocks(16, 16)
    mask = to_block_mask(blocks, causal, heads=4)
    back = from_block_mask(mask)
    assert torch.equal(back.kv_num_blocks, blocks.kv_num_blocks)
    assert torch.equal(back.mask(), blocks.mask())
    out = flex_block_attention(q, k, v, sel, causal, block_q=16, block_k=16)
    torch.testing.assert_close(out, _block_reference(q, k, v, blocks, causal), atol=1e-5, rtol=1e-5)


def test_shared_selection_spreads_over_heads():
    from sparseattn.kernels.flex import to_block_mask

    q, k, _ = qkv(1, 4, 2, 32, 32, 32)
    blocks = sparseattn.select(q, k, method="star_block", causal=True, block_q=16, block_k=16).blocks(16, 16)
    shared = type(blocks)(16, 16, 32, 32, blocks.kv_num_blocks[:, ::2], blocks.kv_indices[:, ::2])
    assert to_block_mask(shared, True, heads=4).kv_num_blocks.shape[1] == 4
    with pytest.raises(ValueError, match="spread"):
        to_block_mask(shared, True, heads=3)


def test_lengths_must_match():
    from sparseattn.kernels.flex import flex_block_attention

    q, k, v = qkv(1, 2, 2, 32, 32, 32)
    sel = sparseattn.select(q, k, method="topk", causal=True).blocks(16, 16)
    with pytest.raises(ValueError, match="lengths"):
        flex_block_attention(q[:, :, :16], k, v, sel, True)
