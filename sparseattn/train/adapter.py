"""Saving a fine-tuned model for reuse, and loading it back as an ordinary :class:`LoadedModel`.

A saved directory holds ``finetune.json`` (the :class:`~.result.FinetuneRecord`), the trained weights -- peft's
``adapter_model.safetensors`` + ``adapter_config.json`` for LoRA, or ``weights.safetensors`` for full
fine-tuning -- and ``detector.safetensors`` when a learned detector was trained (DOTA). :func:`load_finetuned`
rebuilds the base model, merges the adapter into it and attaches the detectors, so every sparseattn tool
(``perplexity``, ``patch``, calibration, traces) runs the fine-tuned operating point; its name
``<model>+finetuned:<key>`` says so in every result.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..core.errors import InvalidParameterError
from ..core.files import read_json_object
from ..models.loader import LoadedModel, load_model
from .detector import detectors, load_detectors
from .result import FinetuneRecord

RECORD = "finetune.json"


@dataclass
class FinetunedModel:
    """A fine-tuned model ready to use, and how it was fine-tuned."""

    model: LoadedModel
    record: FinetuneRecord


def save_finetuned(model: Any, directory: Path, record: FinetuneRecord) -> Path:
    """Save the trained weights of ``model`` (a peft model: its adapter; otherwise every weight), its detectors and
    ``record`` to ``directory``, atomically (a temporary directory renamed into place)."""
    from peft import PeftModel
    from safetensors.torch import save_file

    directory = Path(directory)
    tmp = directory.with_name(f".tmp-{directory.name}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    if isinstance(model, PeftModel):
        model.save_pretrained(str(tmp), save_embedding_layers=False)
    else:
        save_file({n: p.detach().cpu().contiguous() for n, p in model.named_parameters()},
                  str(tmp / "weights.safetensors"))
    found = detectors(model)
    if found:
        save_file({f"layer.{i}": p.detach().cpu().contiguous() for i, p in found.items()},
                  str(tmp / "detector.safetensors"))
    (tmp / RECORD).write_text(json.dumps(record.to_dict(), indent=1))
    if directory.exists():
        shutil.rmtree(directory)
    os.replace(tmp, directory)
    return directory


def load_finetuned(directory: Path | str) -> FinetunedModel:
    """The model saved by :func:`save_finetuned` (or a run's ``final`` directory), adapter merged, detectors
    attached, in eval mode."""
    from safetensors.torch import load_file

    directory = Path(directory)
    if not (directory / RECORD).is_file():
        raise InvalidParameterError(f"{str(directory)!r} is not a saved fine-tuned model (no {RECORD})")
    record = FinetuneRecord.from_dict(read_json_object(directory / RECORD, "fine-tuning record"))
    base = load_model(record.model)
    model = copy.deepcopy(base.model)
    if (directory / "adapter_config.json").is_file():
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(directory)).merge_and_unload()
    else:
        params = dict(model.named_parameters())
        with torch.no_grad():
            for name, t in load_file(str(directory / "weights.safetensors")).items():
                params[name].copy_(t)
    if (directory / "detector.safetensors").is_file():
        tensors = load_file(str(directory / "detector.safetensors"))
        load_detectors(model, {int(k.split(".")[1]): t for k, t in tensors.items()})
    model.eval()
    lm = LoadedModel(name=f"{record.model}+finetuned:{record.key}", model=model, tokenizer=base.tokenizer,
                     kind=base.kind, source=f"fine-tuned ({directory})")
    return FinetunedModel(model=lm, record=record)
