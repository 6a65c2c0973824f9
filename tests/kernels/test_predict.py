"""Block prediction kernels against the ``star_block`` reference: the scores must be identical (integer dot products
are exact, the float steps are the same operations)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sparseattn.methods.blocksparse import predict_block_scores

from .helpers import qkv, reference_parts

shapes = st.fixed_dictionaries({
    "b": st.integers(1, 2),
    "hkv": st.integers(1, 2),
    "g": st.sampled_from([1, 2, 3]),
    "nq": st.integers(1, 70),
    "extra": st.integers(0, 40),
    "causal": st.booleans(),
    "shared": st.booleans(),
    "bq": st.sampled_from([16, 32]),
    "bk": st.sampled_from([16, 32]),
    "d": st.sampled_from([32, 64]),
})


def _kernel_scores(p, plan, codes):
    from sparseattn.kernels.predict import pooled_block_scores, token_block_scores

    if codes.per_token:
        return token_block_scores(codes.q, codes.k, codes.factor, codes.bonus, plan.last_pos, p.block_k, codes.drop,
                                  p.group_shared)
    return pooled_block_scores(codes.q, codes.k, codes.factor, plan.n_valid, p.group_shared)


@pytest.mark.parametrize("predictor", ["dlzs", "pooled", "pade"])
@settings(max_examples=6)
@given(s=shapes)
def test_scores_equal_reference(predictor, s, device):
    q, k, _ = qkv(s["b"], s["hkv"] * s["g"], s["hkv"], s["nq"], s["nq"] + s["extra"], s["d"], torch.bfloat16,
                  device=device)
    _, p, plan, codes = reference_parts(q, k, s["causal"], predictor=predictor, block_q=s["bq"], block_k=s["bk"],
                                        group_shared=s["shared"])
    ref = predict_block_scores(codes, plan, 0, plan.tq, p.group_shared)
    out = _kernel_scores(p, plan, codes)
    assert out.shape == ref.shape
    assert torch.equal(out, ref)


def test_pade_planes_change_scores(device):
    q, k, _ = qkv(1, 2, 2, 40, 40, device=device)
    scores = []
    for planes in (2, 8):
        _, p, plan, codes = reference_parts(q, k, True, predictor="pade", block_q=16, block_k=16, planes=planes)
        scores.append(_kernel_scores(p, plan, codes))
    assert not torch.equal(scores[0], scores[1])


def test_bad_inputs_rejected(device):
    from sparseattn.kernels.predict import pooled_block_scores, token_block_scores

    q, k, _ = qkv(1, 2, 1, 32, 32, device=device)
    _, _p, plan, codes = reference_parts(q, k, True, block_q=16, block_k=16)
    with pytest.raises(ValueError, match="int8"):
        token_block_scores(codes.q.float(), codes.k, codes.factor, codes.bonus, plan.last_pos, 16, 0, True)
    with pytest.raises(ValueError, match="block_k"):
        token_block_scores(codes.q, codes.k, codes.factor, codes.bonus, plan.last_pos, 24, 0, True)
    with pytest.raises(ValueError, match="shape"):
        pooled_block_scores(codes.q, codes.k[0], codes.factor, plan.n_valid, True)
    with pytest.raises(ValueError, match="head_dim"):
        token_block_scores(codes.q[..., :24], codes.k[..., :24], codes.factor, codes.bonus, plan.last_pos, 16, 0,
                           True)
