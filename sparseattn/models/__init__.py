"""Hugging Face integration: bundled offline models, patching attention layers, trace and Q/K/V capture."""

from .loader import MODELS, LoadedModel, load_model
from .patch import CapturedQKV, LayerStats, SparsePatch, attention_layers, patch, unpatch

__all__ = [
    "MODELS",
    "CapturedQKV",
    "LayerStats",
    "LoadedModel",
    "SparsePatch",
    "attention_layers",
    "load_model",
    "patch",
    "unpatch",
]
