"""The training path's forward equals the reference method's output; its gradients flow through the kept pairs."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import sparseattn
from sparseattn.core.call import AttentionCall
from sparseattn.core.validation import validate_qkv
from sparseattn.train.attend import flex_kept, resolve_backend, sdpa_kept, train_attention
from sparseattn.train.binding import training_runner
from tests.helpers import random_qkv

# every method with a useful gradient (tests/test_gradients.py), at settings that leave pairs out
TRAINABLE = [
    ("dense", {}),
    ("topk", {"ratio": 0.3}),
    ("threshold", {"delta": 2.0}),
    ("block_topk", {"block_size": 8}),
    ("star_block", {"block_q": 16, "block_k": 16}),
    ("sofa", {"k": 0.3, "Tc": 2, "min_keys": 4}),
    ("star", {"k": 0.3, "Tc": 2, "min_keys": 4}),
    ("pade", {"formal": "exact", "radius": 2.0}),
    ("sanger", {}),
    ("dota", {"keep": 0.3, "min_keys": 4}),
    ("energon", {}),
    ("elsa", {}),
    ("a3", {}),
]


def _call(q, k, v, causal, layer=None):
    shape, scale = validate_qkv(q, k, v, causal)
    return AttentionCall(q=q, k=k, v=v, shape=shape, scale=scale, layer=layer)


@pytest.fixture(autouse=True)
def _grad_mode():
    with torch.enable_grad():
        yield


@pytest.mark.parametrize(("method", "params"), TRAINABLE, ids=[m for m, _ in TRAINABLE])
@pytest.mark.parametrize("causal", [True, False])
def test_training_forward_equals_the_reference(method, params, causal):
    q, k, v = random_qkv(h=4, hkv=2, nq=48, nk=48, d=16, seed=5)
    ref = sparseattn.attention(q, k, v, method, causal=causal, **params)
    out, sel = train_attention(training_runner(method, params), _call(q, k, v, causal), backend="sdpa")
    assert torch.equal(sel.keep, ref.keep.expand_as(sel.keep))  # the selection is the method's, bit for bit
    torch.testing.assert_close(out, ref.out, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("method", "params"), [("sofa", {"k": 0.3, "Tc": 2, "min_keys": 4}),
                                                ("star_block", {"block_q": 16, "block_k": 16})])
def test_flex_forward_equals_the_reference_on_cpu(method, params):
    """FlexAttention's eager forward runs on CPU (its backward needs CUDA): same output as the reference."""
    q, k, v = random_qkv(h=4, hkv=2, nq=40, nk=40, d=16, seed=2)
    ref = sparseattn.attention(q, k, v, method, causal=True, **params)
    with torch.no_grad():
        out, _ = train_attention(training_runner(method, params), _call(q, k, v, True), backend="flex")
    torch.testing.assert_close(out, ref.out, atol=1e-5, rtol=1e-5)


def test_gradients_flow_only_through_the_kept_pairs():
    q, k, v = random_qkv(h=2, hkv=1, nq=12, nk=12, d=8, dtype=torch.float64, seed=1)
    for t in (q, k, v):
        t.requires_grad_(True)
    runner = training_runner("topk", {"ratio": 0.25, "min_keys": 2})
    out, sel = train_attention(runner, _call(q, k, v, True), backend="sdpa")
    out.sum().backward()
    # a key no query kept gets no gradient through its value
    unused = ~sel.keep.any(dim=2).any(dim=1)[0]  # [Nk]
    assert bool(unused.any())
    assert torch.count_nonzero(v.grad[0, :, unused]) == 0
    assert torch.count_nonzero(v.grad[0, :, ~unused]) > 0

    def f(q, k, v):
        o, s = train_attention(runner, _call(q, k, v, True), backend="sdpa")
        assert torch.equal(s.keep, sel.keep)
        return o

    assert torch.autograd.gradcheck(f, (q.detach().requires_grad_(), k.detach().requires_grad_(),
                                        v.detach().requires_grad_()), eps=1e-6, atol=1e-5, fast_mode=True)


@given(st.integers(1, 3), st.integers(2, 24), st.integers(0, 2**16))
def test_sdpa_kept_is_softmax_over_the_kept_pairs(heads, n, seed):
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(1, heads, n, 8, generator=g, dtype=torch.float64) for _ in range(3))
    keep = torch.rand(1, heads, n, n, generator=g) < 0.4
    keep[..., 0, :] = False  # a row that keeps nothing gives zeros
    s = (q @ k.transpose(-1, -2)) * 8**-0.5
    p = torch.softmax(s.masked_fill(~keep, float("-inf")), dim=-1).nan_to_num(0.0)
    torch.testing.assert_close(sdpa_kept(q, k, v, keep, 8**-0.5), p @ v)


def test_methods_without_useful_gradients_are_refused():
    for method in ("spatten", "dense_int8"):
        with pytest.raises(ValueError, match="gradient"):
            training_runner(method, {})
    with pytest.raises(ValueError, match="backend"):
        resolve_backend("triton", torch.device("cpu"))


def test_flex_kept_on_cpu_matches_sdpa_kept_with_empty_rows():
    q, k, v = random_qkv(h=2, hkv=2, nq=20, nk=20, d=8, seed=4)
    keep = torch.rand(1, 2, 20, 20, generator=torch.Generator().manual_seed(0)) < 0.3
    keep[..., 3, :] = False
    sel = sparseattn.core.selection.Selection(keep=keep, score=None, shape=validate_qkv(q, k, v, False)[0],
                                              method="custom")
    with torch.no_grad():
        torch.testing.assert_close(flex_kept(q, k, v, sel, 8**-0.5, block=8), sdpa_kept(q, k, v, keep, 8**-0.5),
                                   atol=1e-5, rtol=1e-5)


def test_the_selection_of_dense_is_every_valid_pair():
    """``select(..., "dense")`` ran into a missing memory part (KeyError) before the driver counted the mask."""
    q, k, _ = random_qkv(h=2, hkv=1, nq=10, nk=10, d=8)
    sel = sparseattn.select(q, k, "dense", causal=True)
    assert torch.equal(sel.keep[0, 0], torch.tril(torch.ones(10, 10, dtype=torch.bool)))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="FlexAttention's backward needs CUDA")
def test_flex_training_path_on_gpu_matches_sdpa_forward_and_gradients():
    q, k, v = (t.cuda() for t in random_qkv(h=8, hkv=2, nq=1024, nk=1024, d=64, seed=7))
    runner = training_runner("sofa", {"k": 0.1})
    grads = {}
    for backend in ("flex", "sdpa"):
        qq, kk, vv = (t.clone().requires_grad_(True) for t in (q, k, v))
        out, _ = train_attention(runner, _call(qq, kk, vv, True), backend=backend)
        out.square().sum().backward()
        grads[backend] = (out.detach(), qq.grad, kk.grad, vv.grad)
    for a, b in zip(grads["flex"], grads["sdpa"], strict=True):
        torch.testing.assert_close(a, b, atol=2e-3, rtol=2e-3)
