import pytest
import torch

from sparseattn.core import InvalidInputError, InvalidParameterError
from sparseattn.eval import load_text
from sparseattn.models import patch, unpatch


@pytest.fixture(scope="module")
def ids(smollm):
    return smollm.encode(load_text("moby-dick"), 256)


def loss(lm, ids):
    with torch.no_grad():
        return float(lm.model(ids, labels=ids).loss)


def test_dense_patch_matches_the_builtin_attention(smollm, ids):
    builtin = loss(smollm, ids)
    with patch(smollm, "dense") as p:
        patched = loss(smollm, ids)
        assert smollm.model.config._attn_implementation == "sparseattn"
    assert abs(patched - builtin) < 1e-4
    assert p.density == 1.0 and set(p.stats) == set(range(30))
    assert smollm.model.config._attn_implementation == "sdpa"  # restored


def test_sparse_patch_changes_the_loss_and_unpatch_restores_it(smollm, ids):
    builtin = loss(smollm, ids)
    p = patch(smollm, "topk", ratio=0.1)
    sparse = loss(smollm, ids)
    unpatch(smollm)
    assert sparse > builtin + 0.01  # 10% of keys in every layer costs accuracy
    assert 0.09 < p.density < 0.15
    assert loss(smollm, ids) == pytest.approx(builtin, abs=1e-6)


def test_only_the_chosen_layers_run_the_method(smollm, ids):
    with patch(smollm, "topk", layers=[0, 5], ratio=0.2, capture_traces=True) as p:
        loss(smollm, ids)
    assert set(p.stats) == {0, 5} and set(p.traces) == {0, 5}
    w = p.workload()
    assert w.shape.layers == 2 and (w.shape.heads, w.shape.kv_heads, w.shape.q_len) == (9, 3, 256)
    assert w.kept_pairs == p.kept_pairs


def test_qkv_capture_gives_post_rope_tensors(smollm, ids):
    with patch(smollm, "dense", layers=[3], capture_qkv=True) as p:
        loss(smollm, ids)
    c = p.qkv[3][0]
    assert c.q.shape == (1, 9, 256, 64) and c.k.shape == (1, 3, 256, 64) and c.causal
    assert c.scale == pytest.approx(64**-0.5)


def test_generation_with_a_kv_cache_uses_decode_shapes(smollm):
    prompt = smollm.tokenizer("The capital of France is", return_tensors="pt").input_ids
    ref = smollm.model.generate(prompt, max_new_tokens=4, do_sample=False)
    with patch(smollm, "dense", capture_traces=True) as p:
        out = smollm.model.generate(prompt, max_new_tokens=4, do_sample=False)
    assert torch.equal(out, ref)
    q_lens = {w.shape.q_len for w in p.traces[0]}
    assert 1 in q_lens and prompt.shape[1] in q_lens  # prefill, then one query against the cache
    steps = p.steps()  # generate() made a prefill and 3 decode steps (the 4th token needs no forward of its own)
    n = prompt.shape[1]
    assert [(w.shape.q_len, w.shape.k_len, w.shape.layers) for w in steps] == [
        (n, n, 30), (1, n + 1, 30), (1, n + 2, 30), (1, n + 3, 30)]
    assert p.workload(step=0).shape == steps[0].shape
    with pytest.raises(InvalidParameterError, match=r"p.workload\(step=0\)"):
        p.workload()  # different shapes are never stacked silently
    with pytest.raises(InvalidParameterError, match="step must be"):
        p.workload(step=4)


def test_bad_patch_requests(smollm, ids):
    with pytest.raises(InvalidParameterError, match="unknown method"):
        patch(smollm, "nope")
    with pytest.raises(InvalidParameterError, match="unknown parameter"):
        patch(smollm, "topk", delta=3)
    with pytest.raises(InvalidParameterError, match=r"layers \[30\]"):
        patch(smollm, "dense", layers=[30])
    with pytest.raises(InvalidParameterError, match=r"layers must be ints.*1\.7"):
        patch(smollm, "dense", layers=[1.7])
    with patch(smollm, "dense"), pytest.raises(InvalidParameterError, match="already patched"):
        patch(smollm, "dense")
    assert smollm.model.config._attn_implementation == "sdpa"


def test_padding_masks_are_refused_not_ignored(smollm):
    tok = smollm.tokenizer
    batch = torch.tensor([[1, 504, 3575, 282], [1, 504, 2, 2]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    refused = "supports causal or full attention masks; this mask of layer 0 has padding"
    with patch(smollm, "dense"), pytest.raises(InvalidInputError, match=refused):
        smollm.model(batch, attention_mask=mask)
    assert tok.bos_token_id == 1
