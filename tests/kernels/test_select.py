"""Block selection kernel against the ``star_block`` reference on the same scores: identical lists."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sparseattn.methods.blocksparse import predict_block_scores, select_blocks

from .helpers import qkv, reference_parts

budgets = st.one_of(
    st.fixed_dictionaries({"ratio": st.sampled_from([0.1, 0.3, 0.6, 1.0]), "segments": st.integers(1, 4)}),
    st.fixed_dictionaries({"mass": st.sampled_from([0.5, 0.9])}),
)
forcing = st.fixed_dictionaries({
    "keep_first": st.booleans(), "keep_diagonal": st.booleans(), "local_blocks": st.integers(0, 2),
})


def _select(plan, p, scores):
    from sparseattn.kernels.select import select_blocks as kernel_select

    return kernel_select(scores, plan.n_valid, plan.wlo, plan.whi, plan.keep_first, plan.picks, plan.seg_len, p.mass)


@settings(max_examples=6)
@given(budget=budgets, forced=forcing, nq=st.integers(1, 48), extra=st.integers(0, 60), causal=st.booleans(),
       shared=st.booleans())
def test_selection_equals_reference(budget, forced, nq, extra, causal, shared, device):
    q, k, _ = qkv(2, 2, 1, nq, nq + extra, 32, device=device, seed=nq)
    _, p, plan, codes = reference_parts(q, k, causal, block_q=16, block_k=16, group_shared=shared, **budget, **forced)
    scores = predict_block_scores(codes, plan, 0, plan.tq, shared)
    _, num, order = select_blocks(scores, plan, 0, p.mass)
    knum, kidx = _select(plan, p, scores)
    assert knum.dtype == kidx.dtype == torch.int32
    assert torch.equal(knum.long(), num)
    assert torch.equal(kidx.long(), order)


def test_ties_break_by_index(device):
    q, k, _ = qkv(1, 1, 1, 16, 200, 32, device=device)
    _, p, plan, _ = reference_parts(q, k, False, block_q=16, block_k=16, ratio=0.5, keep_first=False,
                                    keep_diagonal=False, local_blocks=0)
    scores = torch.zeros(1, 1, 1, plan.tk, device=device)
    num, idx = _select(plan, p, scores)
    assert idx[0, 0, 0].tolist() == list(range(plan.tk))
    assert int(num) == 7


def test_bad_inputs_rejected(device):
    from sparseattn.kernels.select import select_blocks as kernel_select

    s = torch.zeros(1, 1, 2, 4, device=device)
    n = torch.ones(2, dtype=torch.int32, device=device)
    with pytest.raises(ValueError, match="float32"):
        kernel_select(s.double(), n, n, n, True, None, 4, 0.9)
    with pytest.raises(ValueError, match="either picks"):
        kernel_select(s, n, n, n, True, None, 4, None)
    with pytest.raises(ValueError, match="shape"):
        kernel_select(s, n[:1], n, n, True, None, 4, 0.9)
