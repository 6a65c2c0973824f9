"""What a fine-tuning run returns: :class:`FinetuneResult`, its :class:`FinetuneRecord` (the operating point was
fine-tuned, and how: what calibration and traces record), and :class:`Recovery` (a sparse run against the dense
model fine-tuned identically)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from ..core.errors import SparseAttnError
from .checkpoint import EvalPoint


class TrainingDivergedError(SparseAttnError):
    """The training loss became NaN or infinite (the message names the step; a lower learning rate helps)."""


def check_finite(value: float, what: str) -> float:
    if not math.isfinite(value) or value < 0:
        raise TrainingDivergedError(f"{what} is {value!r}: not a finite non-negative loss; lower the learning rate")
    return value


@dataclass(frozen=True)
class FinetuneRecord:
    """How a model was fine-tuned: what a calibration point or a trace carries to say so."""

    model: str
    method: str
    params: dict[str, Any]
    train_text: str
    train_sha256: str
    tokens: int
    steps: int
    adapter: str  # "LoRA r=8 alpha=8 on q_proj,..." or "full fine-tuning"
    detector: bool  # a learned detector was trained with the model (DOTA)
    seed: int
    key: str  # the run's input key (its directory's run.json)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FinetuneRecord:
        return cls(**data)


@dataclass
class FinetuneResult:
    """One fine-tuning run. Losses are mean negative log-likelihoods per predicted token (nats) on the held-out
    text with the run's method in every layer; ``density`` is kept / valid pairs of the last evaluation."""

    record: FinetuneRecord
    eval_text: str
    loss_before: float
    loss_after: float
    density: float
    train_losses: list[float]
    evals: list[EvalPoint]
    seconds_per_step: float
    run_dir: str
    final_dir: str  # the adapter / weights saved for reuse (load_finetuned)
    model: Any = field(default=None, repr=False)  # the trained transformers model (not serialised)

    @property
    def ppl_before(self) -> float:
        return math.exp(self.loss_before)

    @property
    def ppl_after(self) -> float:
        return math.exp(self.loss_after)

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if k != "model"}
        d["ppl_before"], d["ppl_after"] = self.ppl_before, self.ppl_after
        return d


@dataclass
class Recovery:
    """A sparse fine-tuned model against the dense model fine-tuned identically (same data, steps, seed).

    ``gap_before = sparse loss - dense loss`` before fine-tuning, ``gap_after`` the same after;
    ``recovered = 1 - gap_after / gap_before`` (1: the fine-tuned sparse model is as good as the fine-tuned dense
    one; 0: fine-tuning helped both alike). ``ppl_change_after``: the sparse model's perplexity relative to the
    dense fine-tuned model's, minus 1."""

    dense: FinetuneResult
    sparse: FinetuneResult

    @property
    def gap_before(self) -> float:
        return self.sparse.loss_before - self.dense.loss_before

    @property
    def gap_after(self) -> float:
        return self.sparse.loss_after - self.dense.loss_after

    @property
    def recovered(self) -> float:
        return 1.0 - self.gap_after / self.gap_before if self.gap_before > 0 else float("nan")

    @property
    def ppl_change_before(self) -> float:
        return math.exp(self.gap_before) - 1.0

    @property
    def ppl_change_after(self) -> float:
        return math.exp(self.gap_after) - 1.0

    def to_dict(self) -> dict[str, Any]:
        return {"dense": self.dense.to_dict(), "sparse": self.sparse.to_dict(), "gap_before": self.gap_before,
                "gap_after": self.gap_after, "recovered": self.recovered,
                "ppl_change_before": self.ppl_change_before, "ppl_change_after": self.ppl_change_after}
