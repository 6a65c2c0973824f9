"""Sparse-aware fine-tuning (SOFA's pre-deployment "top-k fine-tune"): the selection without gradient, the
attention over the kept pairs with it, LoRA by default, on Hugging Face Accelerate, resumable."""

from .adapter import FinetunedModel, load_finetuned, save_finetuned
from .attend import train_attention
from .binding import TrainingPatch, bind, unbind
from .checkpoint import ChangedInputsError, EvalPoint
from .config import FinetuneConfig, make_config
from .loop import StepReport, compare_with_dense, finetune, held_out_loss, step_timer
from .result import FinetuneRecord, FinetuneResult, Recovery, TrainingDivergedError

__all__ = [
    "ChangedInputsError",
    "EvalPoint",
    "FinetuneConfig",
    "FinetuneRecord",
    "FinetuneResult",
    "FinetunedModel",
    "Recovery",
    "StepReport",
    "TrainingDivergedError",
    "TrainingPatch",
    "bind",
    "compare_with_dense",
    "finetune",
    "held_out_loss",
    "load_finetuned",
    "make_config",
    "save_finetuned",
    "step_timer",
    "train_attention",
    "unbind",
]
