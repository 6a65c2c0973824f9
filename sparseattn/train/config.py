"""What a fine-tuning run is given: :class:`FinetuneConfig` (validated; bad input names the field).

Defaults, with their sources:

* LoRA (Hu et al., 2021) on the attention projections ``q_proj, k_proj, v_proj, o_proj`` at peft's defaults
  (``r = 8``, ``lora_alpha = 8``, no LoRA dropout); ``full=True`` trains every weight instead;
* AdamW at ``lr = 2e-4`` (the LoRA paper's GPT-2 setting), no weight decay, constant rate (a run can be
  extended by more steps without changing the steps already taken);
* one window of ``tokens`` tokens (512, the issue's setting) per step and process, windows drawn from the training
  text in a seeded order that depends only on the step index;
* a held-out evaluation on ``eval_windows`` windows of the evaluation text before step 1, every ``eval_every``
  steps (default: a quarter of the run) and after the last step; a checkpoint every ``save_every`` steps
  (default: ``eval_every``) and after the last;
* a method with a learned detector (DOTA) trains it with its detection loss at ``detector_lr = 1e-2``: at Adam's
  default 1e-3 a rank-16 detector moves too little in tens of steps (measured on SmolLM2's Q/K).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..core.errors import InvalidParameterError, describe_validation_error

LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")


class FinetuneConfig(BaseModel):
    """A fine-tuning run (see the module docstring for the defaults)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field("smollm2-135m", description="bundled model, .gguf file, Hugging Face directory or cached id")
    method: str = Field("sofa", description="the method in every attention layer ('dense': the model's own)")
    params: dict[str, Any] = Field(default_factory=dict, description="the method's parameters")
    train_text: str = Field("sotu", description="bundled text, UTF-8 file or string to train on")
    eval_text: str = Field("moby-dick", description="held-out text (bundled, file or string)")
    tokens: int = Field(512, ge=2, description="tokens per window, BOS included")
    steps: int = Field(..., ge=1, description="optimizer steps")
    eval_windows: int = Field(1, ge=1, description="held-out windows per evaluation")
    eval_every: int | None = Field(None, ge=1, description="evaluate every this many steps (default steps // 4)")
    save_every: int | None = Field(None, ge=1, description="checkpoint every this many steps (default eval_every)")
    lr: float = Field(2e-4, gt=0, le=1, description="AdamW learning rate of the model's trained weights")
    weight_decay: float = Field(0.0, ge=0, le=1, description="AdamW weight decay")
    full: bool = Field(False, description="train every weight instead of LoRA adapters")
    lora_rank: int = Field(8, ge=1, description="LoRA rank r")
    lora_alpha: float = Field(8.0, gt=0, description="LoRA scaling alpha")
    lora_targets: tuple[str, ...] = Field(LORA_TARGETS, min_length=1, description="module names given LoRA")
    train_detector: bool = Field(True, description="train the method's learned detector (DOTA) when it has one")
    detector_lr: float = Field(1e-2, gt=0, le=1, description="Adam learning rate of the detector")
    seed: int = Field(0, ge=0, description="seed of the adapters' initialisation and the window order")
    backend: Literal["auto", "sdpa", "flex"] = Field("auto", description="attend step: masked SDPA or FlexAttention")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: Accelerate's choice")
    out: Path | None = Field(None, description="run directory (default runs/finetune/<method>-<key>)")

    @field_validator("method")
    @classmethod
    def _known_method(cls, v: str) -> str:
        from ..methods.registry import get_method

        get_method(v)  # unknown method: the registry's error lists the methods
        return v

    @property
    def every_eval(self) -> int:
        return self.eval_every or max(1, self.steps // 4)

    @property
    def every_save(self) -> int:
        return self.save_every or self.every_eval

    @property
    def adapter(self) -> str:
        """The trained weights in words."""
        if self.full:
            return "full fine-tuning"
        return f"LoRA r={self.lora_rank} alpha={self.lora_alpha:g} on {','.join(self.lora_targets)}"


def make_config(**fields: Any) -> FinetuneConfig:
    """A :class:`FinetuneConfig` from keyword arguments; a bad value raises ``InvalidParameterError`` naming it."""
    try:
        config = FinetuneConfig(**fields)
    except ValidationError as err:
        raise InvalidParameterError(describe_validation_error(err, "fine-tuning config")) from None
    from ..methods.registry import parse_params
    from .binding import training_runner

    if config.method == "dense":
        parse_params("dense", config.params)  # dense takes none: a stray parameter is an error, not ignored
    else:
        training_runner(config.method, config.params)  # bad parameters, or a method without useful gradients
    return config
