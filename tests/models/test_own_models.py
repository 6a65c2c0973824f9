"""A user's own models: tiny randomly initialised Qwen3 (q/k norm), Gemma 3 (sliding-window and global layers,
head dim 256, GQA 4:1), Mistral (sliding window) and Gemma 2 (logit soft-capping), built from transformers
configs (no download), plus the bundled MiniLM encoder. Dense through the patch equals the model's own attention;
sparse methods select inside the sliding window; SOFA's cross-phase keys follow the model's key norm."""

from __future__ import annotations

import pytest
import torch

import sparseattn
from sparseattn.core import valid_mask
from sparseattn.models import LoadedModel, attention_layers, load_model, patch
from sparseattn.models.layer import side_inputs

N = 48  # longer than the sliding windows below
WINDOW = 16


def _tiny(kind: str):
    from transformers import (
        Gemma2Config,
        Gemma2ForCausalLM,
        Gemma3ForCausalLM,
        Gemma3TextConfig,
        MistralConfig,
        MistralForCausalLM,
        Qwen3Config,
        Qwen3ForCausalLM,
    )

    torch.manual_seed(0)
    common = dict(vocab_size=128, hidden_size=64, intermediate_size=128, max_position_embeddings=256)
    if kind == "qwen3":
        model = Qwen3ForCausalLM(Qwen3Config(**common, num_hidden_layers=2, num_attention_heads=4,
                                             num_key_value_heads=2, head_dim=16))
        for layer in model.model.layers:  # non-trivial norm weights, so that skipping k_norm would show
            torch.nn.init.uniform_(layer.self_attn.k_norm.weight, 0.2, 3.0)
    elif kind == "gemma3":
        model = Gemma3ForCausalLM(Gemma3TextConfig(
            **common, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=1, head_dim=256,
            sliding_window=WINDOW, query_pre_attn_scalar=256,
            layer_types=["sliding_attention", "sliding_attention", "sliding_attention", "full_attention"]))
    elif kind == "mistral":
        model = MistralForCausalLM(MistralConfig(**common, num_hidden_layers=2, num_attention_heads=4,
                                                 num_key_value_heads=2, head_dim=16, sliding_window=WINDOW))
    else:
        model = Gemma2ForCausalLM(Gemma2Config(**common, num_hidden_layers=2, num_attention_heads=4,
                                               num_key_value_heads=2, head_dim=16, attn_logit_softcapping=50.0))
    model.set_attn_implementation("eager" if kind == "gemma2" else "sdpa")  # Gemma 2 has no SDPA path
    return LoadedModel(name=f"tiny-{kind}", model=model.eval(), tokenizer=None)


def _loss(lm: LoadedModel, ids: torch.Tensor) -> float:
    with torch.no_grad():
        return float(lm.model(ids, labels=ids).loss)


IDS = torch.randint(0, 128, (1, N), generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("kind", ["qwen3", "gemma3", "mistral"])
def test_dense_patch_equals_the_models_own_attention(kind):
    lm = _tiny(kind)
    ref = _loss(lm, IDS)
    with patch(lm, "dense", capture_qkv=True) as p:
        assert _loss(lm, IDS) == pytest.approx(ref, abs=1e-4)
    windows = {layer: calls[0].window for layer, calls in p.qkv.items()}
    if kind == "gemma3":  # three local layers, one global
        assert windows == {0: WINDOW, 1: WINDOW, 2: WINDOW, 3: None}
    elif kind == "mistral":
        assert set(windows.values()) == {WINDOW}
    else:
        assert set(windows.values()) == {None}


def test_the_encoder_through_the_same_patch():
    enc = load_model("minilm-l6")
    assert enc.kind == "encoder"
    ids = enc.encode("Call me Ishmael. Some years ago, never mind how long precisely, I went to sea. " * 4, 64)
    with torch.no_grad():
        ref = enc.embed(ids)
        with patch(enc, "dense", capture_qkv=True) as p:
            assert torch.allclose(enc.embed(ids), ref, atol=1e-4)
    assert {c[0].causal for c in p.qkv.values()} == {False} and len(p.qkv) == 6  # bidirectional layers


METHODS = [("topk", {"ratio": 0.3}), ("threshold", {"delta": 2.0}), ("block_topk", {"block_size": 8}),
           ("sofa", {"k": 0.3}), ("star", {"k": 0.3}), ("pade", {"radius": 3.0, "tile": 8}), ("sanger", {}),
           ("dota", {}), ("energon", {}), ("elsa", {}), ("a3", {}), ("spatten", {}), ("dense_int8", {})]


@pytest.mark.parametrize(("method", "params"), METHODS, ids=[m for m, _ in METHODS])
def test_every_method_selects_inside_the_sliding_window(method, params):
    from tests.helpers import random_qkv

    q, k, v = random_qkv(b=2, h=4, hkv=2, nq=40, nk=56, d=16, seed=2, spread=2.0)
    r = sparseattn.attention(q, k, v, method, causal=True, window=WINDOW, **params)
    inside = valid_mask(40, 56, True, window=WINDOW)
    assert not bool((r.keep & ~inside).any())  # nothing outside the window
    assert bool(r.keep.any(-1).all())  # every row keeps something
    s = r.trace.shape
    assert s.window == WINDOW and s.valid_pairs_per_head == int(inside.sum())
    assert r.trace.profile.kept_pairs == int(r.keep.sum())  # the trace counts only pairs inside


def test_methods_in_a_sliding_window_model_stay_inside():
    lm = _tiny("mistral")
    with patch(lm, "topk", ratio=0.3, capture_traces=True) as p:
        _loss(lm, IDS)
    w = p.workload()
    assert w.shape.window == WINDOW and w.density == pytest.approx(p.density)
    assert p.valid_pairs == 2 * 4 * sum(min(i + 1, WINDOW) for i in range(N))


def test_sofa_cross_phase_keys_follow_the_key_norm():
    lm = _tiny("qwen3")
    with patch(lm, "dense", capture_qkv=True) as p:
        _loss(lm, IDS)
        module = attention_layers(lm.model)[1]
        side = side_inputs(module)
    real = p.qkv[1][0]
    assert side.k_norm is module.k_norm and side.k_norm_over == "head"
    from sparseattn.methods.sofa import SofaParams
    from sparseattn.methods.sofa.keys import predicted_keys

    shape = sparseattn.attention(real.q, real.k, real.v, "dense", causal=True).trace.shape
    exact = predicted_keys(side, shape, SofaParams(keys="cross_phase", key_estimate="exact"))
    cos = torch.nn.functional.cosine_similarity(exact, real.k, dim=-1)
    assert float(cos.min()) > 0.999  # the key path (norm, RoPE) reproduces the model's keys
    unnormed = predicted_keys(side.__class__(**{**side.__dict__, "k_norm": None, "k_norm_over": None}), shape,
                              SofaParams(keys="cross_phase", key_estimate="exact"))
    assert float(torch.nn.functional.cosine_similarity(unnormed, real.k, dim=-1).mean()) < 0.99  # what it fixes
    kw = dict(causal=True, scale=real.scale, k=0.3, Tc=2)
    a = sparseattn.attention(real.q, real.k, real.v, "sofa", side=side, keys="cross_phase", key_estimate="exact",
                             khat_bits=16, **kw)
    b = sparseattn.attention(real.q, real.k, real.v, "sofa", keys="k", k_bits=16, **kw)
    assert torch.equal(a.keep, b.keep)  # selection from the predicted keys equals selection from the real keys


def test_semantics_we_do_not_implement_are_refused():
    lm = _tiny("gemma2")
    with patch(lm, "dense"), pytest.raises(ValueError, match="soft-capping"):
        _loss(lm, IDS)
