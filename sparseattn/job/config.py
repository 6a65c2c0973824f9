"""The main job's configuration: :class:`RunConfig` (CLI options or a ``run.yaml`` with the same keys) and
:func:`load_config`; every bad option is refused before any long work starts."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..core.errors import InvalidParameterError, describe_validation_error

DEFAULT_METHODS = ["topk", "threshold", "block_topk", "sofa", "star", "pade", "sanger", "dota", "energon", "elsa",
                   "a3", "spatten", "star_block"]
QUICK = {"tokens": 256, "encoder_tokens": 128, "passages": 4, "fidelity_layers": [2],
         "spatial_seqs": [32768, 131072], "reproduce": False, "dse_trials": 12, "budgets": [0.02], "calib_tokens": 128}


class RunConfig(BaseModel):
    """What ``sparseattn run`` does; the defaults are the embedded, offline job."""

    model_config = ConfigDict(extra="forbid", strict=True)

    model: str = Field("smollm2-135m", description="decoder: bundled name, .gguf file, HF directory or cached id")
    encoder: str | None = Field("minilm-l6", description="encoder for the BERT-style rows (null: skip)")
    text: str = Field("moby-dick", description="bundled text name, UTF-8 file path or a string of text")
    tokens: int = Field(1024, ge=32, le=8192, description="decoder window, special tokens included")
    encoder_tokens: int = Field(256, ge=16, le=512, description="encoder passage length")
    passages: int = Field(8, ge=2, le=64, description="encoder passages per bundled text")
    methods: list[str] = Field(default_factory=lambda: list(DEFAULT_METHODS), min_length=1)
    fidelity_layers: list[int] = Field(default_factory=lambda: [2, 14, 27], min_length=1)
    decoder_shape: str = Field("llama2-7b", description="model shape the decoder traces are simulated at")
    decoder_seq: int = Field(2048, ge=16)
    encoder_shape: str = Field("bert-large", description="model shape the encoder traces are simulated at")
    encoder_seq: int = Field(512, ge=16)
    gpus: list[str] = Field(default_factory=lambda: ["a100", "h100"], description="GPU models compared with")
    reproduce: bool = Field(True, description="recompute the papers' headline claims")
    spatial: bool = Field(True, description="Spatial-STAR throughput vs sequence length")
    spatial_seqs: list[int] = Field(default_factory=lambda: [32768, 131072, 524288, 1048576], min_length=1)
    dse_trials: int = Field(40, ge=0, le=10_000, description="trials of the STAR tiling search (0: skip)")
    budgets: list[float] = Field(default_factory=lambda: [0.01, 0.02], description="loss budgets of the "
                                 "equal-accuracy step (relative perplexity increase; empty: skip)")
    calib_text: str = Field("sotu", description="text the methods are calibrated on (judged on `text`)")
    calib_tokens: int = Field(256, ge=32, le=8192, description="calibration and judgement window, special tokens "
                              "included")
    device: Literal["cpu", "cuda"] = "cpu"
    quick: bool = Field(False, description="a smaller job: shorter windows, fewer layers and sequence lengths")

    @field_validator("methods")
    @classmethod
    def _known_methods(cls, v: list[str]) -> list[str]:
        from ..methods import get_method

        for m in v:
            get_method(m)  # raises naming the available methods
        if len(set(v)) != len(v):
            raise ValueError(f"methods are listed twice: {sorted(m for m in set(v) if v.count(m) > 1)}")
        return v

    @field_validator("budgets")
    @classmethod
    def _budgets(cls, v: list[float]) -> list[float]:
        bad = [b for b in v if not 0 < b < 1]
        if bad:
            raise ValueError(f"loss budgets must lie strictly between 0 and 1 (0.01 = +1% perplexity), got {bad}")
        return sorted(set(v))

    @model_validator(mode="after")
    def _held_out(self) -> RunConfig:
        if self.budgets and self.calib_text == self.text:
            raise ValueError(f"calib_text and text are both {self.text!r}: the calibrated setting is judged on a "
                             "different text")
        return self

    @field_validator("gpus")
    @classmethod
    def _known_gpus(cls, v: list[str]) -> list[str]:
        from ..hw import load_arch

        for g in v:
            if getattr(load_arch(g), "kind", None) != "gpu":
                raise ValueError(f"{g!r} is not a GPU architecture")
        return v

    def effective(self) -> RunConfig:
        """The configuration actually run: ``quick`` overrides the sizes."""
        return self.model_copy(update=QUICK) if self.quick else self


def load_config(path: Path | None, overrides: dict[str, Any]) -> RunConfig:
    """A ``RunConfig`` from a YAML file (optional) and the options given on the command line (``overrides``: only
    the keys the user gave; they win over the file); errors name the file and the key."""
    data: dict[str, Any] = {}
    where = "run options"
    if path is not None:
        import yaml

        where = str(path)
        if not Path(path).is_file():
            raise InvalidParameterError(f"config file {str(path)!r} does not exist")
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as err:
            raise InvalidParameterError(f"{path}: not valid YAML ({err})") from None
        if not isinstance(data, dict):
            raise InvalidParameterError(f"{path}: expected a mapping of run options, got {type(data).__name__}")
    data.update(overrides)
    try:
        return RunConfig(**data)
    except ValidationError as err:
        raise InvalidParameterError(describe_validation_error(err, where)) from None
