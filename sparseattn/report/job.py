"""The main job (``sparseattn run``, ``make run``): from a real model to simulated accelerators, in one report.

Steps (each one resumable: every finished unit is saved to ``results.json`` at once, atomically):

1. **accuracy** -- the decoder (SmolLM2 by default) on a text window with every method in every layer at its
   default setting: perplexity, density (overall and per layer), attention fidelity on a few layers (kept softmax
   mass, output error), each method beside the top-k oracle at its own density; the method's trace of every layer
   is kept for step 3;
2. **encoder** -- the bundled encoder (all-MiniLM-L6-v2, a BERT) with every method: embedding cosine to dense and
   retrieval agreement (the papers' BERT rows are bidirectional), and its traces;
3. **hardware** -- each method's captured traces simulated on its own accelerator and, for reference, dense
   attention on the A100 and H100 models, at the papers' workload shapes (decoder traces on Llama2-7B, encoder
   traces on BERT-Large; the scaling from the captured shape is stated);
4. **reproduce** -- the papers' headline claims, paper vs ours (:mod:`sparseattn.report.reproduce`);
5. **spatial** -- Spatial-STAR throughput vs sequence length against its baselines;
6. **dse** -- a Bayesian search of STAR's cross-stage tiling on the decoder shape (latency and DRAM traffic);
7. **kernels** -- with ``device="cuda"``: the Triton kernel against PyTorch SDPA; on a CPU, recorded as not run;
8. **calibrate** -- equal accuracy: each method's density knob calibrated to +1% and +2% perplexity on
   ``calib_text`` and judged on ``text``, its accelerator simulated there, beside the oracles at the same budget
   (:mod:`sparseattn.report.equal_accuracy`).

Then figures, CSV tables and a self-contained ``report.html`` (:mod:`sparseattn.report.html`). The configuration is
:class:`RunConfig` (CLI options or a ``run.yaml`` with the same keys); every bad option is refused before any long
work starts, and nothing is written outside the output directory.
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..core.errors import InvalidParameterError, describe_validation_error
from ..core.files import CorruptFileError, read_json_object, write_atomic

DEFAULT_METHODS = ["topk", "threshold", "block_topk", "sofa", "star", "pade", "sanger", "dota", "energon", "elsa",
                   "a3", "spatten", "star_block"]
QUICK = {"tokens": 256, "encoder_tokens": 128, "passages": 4, "fidelity_layers": [2],
         "spatial_seqs": [32768, 131072], "reproduce": False, "dse_trials": 12, "budgets": [0.02], "calib_tokens": 128}
FORMAT = 1


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


def environment() -> dict[str, str]:
    """Versions and machine, recorded with every result."""
    import torch
    import transformers

    from .. import __version__

    return {"sparseattn": __version__, "torch": torch.__version__, "transformers": transformers.__version__,
            "python": platform.python_version(), "machine": platform.machine(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "threads": str(torch.get_num_threads())}


def run_inputs(cfg: RunConfig) -> dict[str, str]:
    """Content hashes of a run's inputs (the text's characters, the model's and encoder's files or bundled names):
    a resume whose inputs changed is refused, naming what changed."""
    import hashlib

    from ..core.files import content_sha256
    from ..eval.corpora import load_text

    out = {"text_sha256": hashlib.sha256(load_text(cfg.text).encode("utf-8")).hexdigest()[:16],
           "model_sha256": content_sha256(cfg.model)[:16]}
    if cfg.encoder:
        out["encoder_sha256"] = content_sha256(cfg.encoder)[:16]
    return out


def _well_formed(data: dict[str, Any]) -> bool:
    """``steps`` maps steps to dicts of units, ``seconds`` steps to numbers, ``inputs`` names to strings."""
    steps, seconds, inputs = data.get("steps"), data.get("seconds", {}), data.get("inputs", {})
    return (isinstance(steps, dict) and all(isinstance(v, dict) for v in steps.values())
            and isinstance(seconds, dict) and all(isinstance(v, int | float) and not isinstance(v, bool)
                                                  for v in seconds.values())
            and isinstance(inputs, dict) and all(isinstance(v, str) for v in inputs.values()))


class ResultStore:
    """``results.json`` of a run directory: the configuration, the environment and each step's finished units,
    saved atomically after every unit so an interrupted run resumes and loses nothing."""

    def __init__(self, out: Path, config: RunConfig, inputs: dict[str, str] | None = None) -> None:
        self.out, self.config = out, config
        self.path = out / "results.json"
        self.inputs = inputs if inputs is not None else run_inputs(config)
        self.data: dict[str, Any] = {"format": FORMAT, "config": config.model_dump(), "environment": environment(),
                                     "inputs": self.inputs, "steps": {}, "seconds": {}}

    def open(self, resume: bool) -> ResultStore:
        """Load an existing store when resuming (refusing a corrupt one or another configuration's)."""
        if not self.path.exists():
            return self
        if not resume:
            raise InvalidParameterError(f"{self.out} already holds a run; pass --resume to continue it, or choose "
                                        "another --out")
        hint = "; rerun with --restart to move it aside (it is kept, renamed .bad-<time>) and start afresh"
        old = read_json_object(self.path, "results file", hint)
        if old.get("format") != FORMAT or not _well_formed(old):
            raise CorruptFileError(f"results file {str(self.path)!r} is not a run of this version (it needs "
                                   "'steps': {step: {unit: result}} and 'seconds': {step: number})" + hint)
        if old.get("config") != self.config.model_dump():
            raise InvalidParameterError(f"{self.path} holds a run with other options; resume with the same options "
                                        "or use a new --out")
        changed = [k.removesuffix("_sha256") for k in self.inputs if old.get("inputs", {}).get(k) != self.inputs[k]]
        if changed:
            raise InvalidParameterError(
                f"{self.path} was computed from other inputs: the {' and the '.join(changed)} changed since (by "
                "content); resuming would mix them in one report. Restore them, or rerun with --restart to move "
                "the old results aside and start afresh")
        self.data.update(steps=old["steps"], seconds=old.get("seconds", {}))
        return self

    def get(self, step: str, unit: str) -> Any:
        return self.data["steps"].get(step, {}).get(unit)

    def put(self, step: str, unit: str, value: Any) -> None:
        self.data["steps"].setdefault(step, {})[unit] = value
        self.save()

    def timed(self, step: str, seconds: float) -> None:
        self.data["seconds"][step] = self.data["seconds"].get(step, 0.0) + seconds
        self.save()

    def save(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, json.dumps(self.data, indent=1, default=str))


class Clock:
    """Seconds spent in a step, added to the store when the step ends."""

    def __init__(self, store: ResultStore, step: str) -> None:
        self.store, self.step = store, step

    def __enter__(self) -> Clock:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.store.timed(self.step, time.perf_counter() - self.start)
