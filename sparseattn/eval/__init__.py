"""Accuracy harness: bundled texts, perplexity, attention fidelity, calibration and the main sweep."""

from .calibrate import threshold_delta_for_density
from .corpora import CORPORA, load_text, text_names
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
    "Fidelity",
    "PerplexityResult",
    "SweepConfig",
    "attention_fidelity",
    "capture_qkv",
    "fidelity_of",
    "load_text",
    "perplexity",
    "perplexity_of_ids",
    "recall_of_exact_topk",
    "run_sweep",
    "text_names",
    "threshold_delta_for_density",
    "topk_recall",
]
