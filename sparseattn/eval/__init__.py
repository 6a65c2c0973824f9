"""Accuracy harness: texts, perplexity (decoders), embedding fidelity (encoders), attention fidelity, calibration
and the main sweep."""

from .calibrate import threshold_delta_for_density
from .corpora import CORPORA, load_text, text_label, text_names
from .embedding import EmbeddingResult, embedding_fidelity, passages
from .fidelity import (
    Fidelity,
    attention_fidelity,
    capture_qkv,
    fidelity_of,
    recall_of_exact_topk,
    topk_recall,
)
from .perplexity import PerplexityResult, perplexity, perplexity_of_ids
from .sweep import SweepConfig, run_sweep

__all__ = [
    "CORPORA",
    "EmbeddingResult",
    "Fidelity",
    "PerplexityResult",
    "SweepConfig",
    "attention_fidelity",
    "capture_qkv",
    "embedding_fidelity",
    "fidelity_of",
    "load_text",
    "passages",
    "perplexity",
    "perplexity_of_ids",
    "recall_of_exact_topk",
    "run_sweep",
    "text_label",
    "text_names",
    "threshold_delta_for_density",
    "topk_recall",
]
