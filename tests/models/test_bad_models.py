"""Model loading refuses what it cannot run with one clear error naming the model, never a traceback deep in
transformers or a misleading later error (a Mamba directory used to say "the text has only 0 tokens")."""

from __future__ import annotations

import json
import os

import pytest
from typer.testing import CliRunner

from sparseattn.cli import app
from sparseattn.core import InvalidParameterError
from sparseattn.models.loader import load_model, load_tokenizer

BERT = {"model_type": "bert", "architectures": ["BertModel"], "hidden_size": 32, "num_attention_heads": 2,
        "num_hidden_layers": 1, "intermediate_size": 64, "vocab_size": 100}
T5 = {"model_type": "t5", "architectures": ["T5ForConditionalGeneration"], "d_model": 32, "num_heads": 2,
      "num_layers": 1, "d_ff": 64, "vocab_size": 100, "is_encoder_decoder": True}
MAMBA = {"model_type": "mamba", "architectures": ["MambaForCausalLM"], "hidden_size": 32, "num_hidden_layers": 1,
         "vocab_size": 100}


def _gguf(tmp_path, content: bytes):
    path = tmp_path / "model.gguf"
    path.write_bytes(content)
    return path


def _hf_dir(tmp_path, config):
    d = tmp_path / "model"
    d.mkdir()
    (d / "config.json").write_text(config if isinstance(config, str) else json.dumps(config))
    return d


CASES = {
    "a random .gguf": (lambda t: _gguf(t, os.urandom(4096)), "not a readable GGUF"),
    "an empty .gguf": (lambda t: _gguf(t, b""), "is empty"),
    "an invalid config.json": (lambda t: _hf_dir(t, "{not json"), "config.json"),
    "a config.json without model_type": (lambda t: _hf_dir(t, {"hidden_size": 3}), "config.json"),
    "a directory without a tokenizer": (lambda t: _hf_dir(t, BERT), "tokenizer"),
    "an encoder-decoder (T5)": (lambda t: _hf_dir(t, T5), "encoder-decoder"),
    "an architecture without attention (Mamba)": (lambda t: _hf_dir(t, MAMBA), "mamba"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_model_that_cannot_run_is_refused_naming_it(tmp_path, case):
    make, expect = CASES[case]
    path = make(tmp_path)
    load_tokenizer.cache_clear()
    with pytest.raises(InvalidParameterError, match=expect) as info:
        load_model(str(path))
    assert str(path) in str(info.value)


def test_the_cli_reports_a_bad_model_in_one_line(tmp_path):
    path = _hf_dir(tmp_path, MAMBA)
    result = CliRunner().invoke(app, ["eval", "--model", str(path)], terminal_width=200)
    assert result.exit_code == 2, result.output
    assert "mamba" in result.output and "Traceback" not in result.output
