"""A tiny random Llama built locally (2 layers, GQA, SmolLM2's tokenizer): fine-tuning tests without downloads."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch


def build_tiny_llama(directory: Path, seed: int = 0) -> Path:
    """Save a 2-layer LlamaConfig model (hidden 64, 4 query / 2 KV heads of 16) with SmolLM2's tokenizer."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from sparseattn.models.loader import load_tokenizer

    tokenizer, _, _ = load_tokenizer("smollm2-135m")
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> str:
    return str(build_tiny_llama(tmp_path_factory.mktemp("tiny-llama")))
