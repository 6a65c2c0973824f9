"""Gradients flow through the kept pairs (the selection a constant), or a method refuses clearly."""

import pytest
import torch

import sparseattn
from tests.helpers import random_qkv


@pytest.fixture(autouse=True)
def _grad_mode():
    """Gradients on for these tests (the model fixture turns grad mode off for the session)."""
    with torch.enable_grad():
        yield


DIFFERENTIABLE = [
    ("dense", {}),
    ("topk", {"ratio": 0.5}),
    ("threshold", {"delta": 2.0}),
    ("block_topk", {"block_size": 4}),
    ("sofa", {"k": 0.5, "Tc": 2}),
    ("star", {"k": 0.5, "Tc": 2}),
    ("pade", {"formal": "exact", "radius": 2.0}),
    ("sanger", {}),
    ("dota", {}),
    ("energon", {}),
    ("elsa", {}),
    ("a3", {}),
]


@pytest.mark.parametrize(("method", "params"), DIFFERENTIABLE, ids=[m for m, _ in DIFFERENTIABLE])
@pytest.mark.parametrize("causal", [True, False])
def test_gradcheck_through_the_kept_pairs(method, params, causal):
    q, k, v = random_qkv(h=2, hkv=1, nq=6, nk=7, d=8, dtype=torch.float64, seed=3)
    for t in (q, k, v):
        t.requires_grad_(True)
    keep = sparseattn.attention(q, k, v, method, causal=causal, **params).keep

    def f(q, k, v):
        r = sparseattn.attention(q, k, v, method, causal=causal, **params)
        assert torch.equal(r.keep, keep)  # the selection is a constant of the perturbation
        return r.out

    assert torch.autograd.gradcheck(f, (q, k, v), eps=1e-6, atol=1e-5, fast_mode=True)


@pytest.mark.parametrize(("method", "params"), [("pade", {}), ("dense_int8", {}), ("spatten", {})])
def test_quantised_methods_refuse_inputs_that_require_grad(method, params):
    q, k, v = random_qkv(h=2, hkv=1, nq=6, nk=6, d=8)
    q.requires_grad_(True)
    with pytest.raises(ValueError, match="gradient"):
        sparseattn.attention(q, k, v, method, causal=True, **params)
    with torch.no_grad():  # without grad mode the same call runs
        assert sparseattn.attention(q, k, v, method, causal=True, **params).out.shape == q.shape


def test_gradients_reach_the_model_weights_through_a_patch(smollm):
    from sparseattn.models import patch

    model = smollm.model
    ids = smollm.encode("It was the best of times, it was the worst of times, it was the age of wisdom.", 16)
    with torch.enable_grad():
        model.zero_grad(set_to_none=True)
        with patch(smollm, "topk", layers=[0, 1], ratio=0.5):
            loss = model(ids, labels=ids).loss
            loss.backward()
        q_proj = model.model.layers[0].self_attn.q_proj.weight
        assert q_proj.grad is not None and float(q_proj.grad.abs().sum()) > 0
        model.zero_grad(set_to_none=True)
        with patch(smollm, "pade", layers=[0]), pytest.raises(ValueError, match="formal='exact'"):
            model(ids, labels=ids).loss.backward()
        model.zero_grad(set_to_none=True)
