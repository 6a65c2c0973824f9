"""The rows the report reads: one pydantic model per kind of result the main job stores (:mod:`sparseattn.job`),
and :class:`RunView`, the typed results of one run that every section, table and figure of the report is drawn from.

The job validates each stored unit against these models when it resumes (a malformed or old ``results.json`` is
refused with the field that is wrong), and writes them with ``model_dump``; the report never indexes a dict by a
row's field name. A step the report does not know stores its own model and draws its own section.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict


class Row(BaseModel):
    """A stored row: every field declared (an unknown one is an error), validated on load."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# ------------------------------------------------------------------------------------------------ accuracy
class FidelityRow(Row):
    """Attention fidelity of a method on one captured layer (:class:`sparseattn.eval.fidelity.Fidelity`)."""

    recall: float
    recall_min: float
    output_rel_error: float
    density: float


class OracleRow(Row):
    """The top-k oracle at a method's density, on the same tokens."""

    ppl: float
    density: float
    ppl_change: float


class AccuracyRow(Row):
    """One method (or ``dense``) in every layer of the decoder: a perplexity result
    (:class:`sparseattn.eval.perplexity.PerplexityResult`), its saved trace and, for a sparse method, the change
    against dense, fidelity on the captured layers and the oracle at its density."""

    model: str
    text: str
    n_tokens: int
    method: str
    params: dict[str, Any]
    nll: float
    ppl: float
    density: float
    kept_pairs: int
    valid_pairs: int
    seconds: float
    layers: list[int] | None = None
    layer_density: dict[int, float] = {}
    trace: str
    ppl_change: float | None = None
    fidelity: dict[int, FidelityRow] | None = None
    oracle: OracleRow | None = None


class EncoderRow(Row):
    """One method on the encoder (:class:`sparseattn.eval.embedding.EmbeddingResult`), its passages' texts (and why
    the run's own text was not used) and its saved trace."""

    model: str
    method: str
    params: dict[str, Any]
    n_passages: int
    n_tokens: int
    cosine: float
    cosine_min: float
    retrieval_agreement: float
    density: float
    seconds: float
    texts: list[str]
    texts_note: str | None = None
    trace: str


# ------------------------------------------------------------------------------------------------ hardware
class ShapeRow(Row):
    """The shape a trace was captured at (:class:`sparseattn.core.shape.Shape`)."""

    batch: int
    heads: int
    kv_heads: int
    q_len: int
    k_len: int
    head_dim: int
    causal: bool
    layers: int = 1
    window: int | None = None


class HardwareRow(Row):
    """One design simulated on one workload's trace at a model shape (its summary, energy by part, the shape the
    trace was captured at)."""

    arch: str
    method: str
    workload: str
    shape: str
    seq: int
    latency_ms: float
    energy_mj: float
    power_w: float
    area_mm2: float
    effective_gops: float
    gops_per_w: float
    gops_per_mm2: float
    dram_mb: float
    density: float
    energy_parts_mj: dict[str, float]
    scaled_from: ShapeRow
    notes: list[str]


class VsGpu(Row):
    """An accelerator against one GPU on the same workload: speed-up and energy efficiency (GPU / accelerator)."""

    speedup: float
    energy: float


@dataclass(frozen=True)
class HardwareComparison:
    """A simulated accelerator row with its store key, its label and how it compares with each GPU."""

    row: HardwareRow
    unit: str
    label: str
    vs: dict[str, VsGpu]


# ------------------------------------------------------------------------------------------------ reproduce
class ClaimRow(Row):
    """One headline claim of a paper, paper vs ours (:class:`sparseattn.report.claim.Claim` with its ratio)."""

    paper: str
    id: str
    text: str
    paper_value: float
    ours: float
    assumptions: list[str]
    per_item: dict[str, float] = {}
    method: str = ""
    check: float | None = None
    derivation: list[str] = []
    low: float | None = None
    high: float | None = None
    swings: dict[str, dict[str, float]] = {}
    most: str = ""
    aggregate: str = ""
    before: float | None = None
    ratio: float
    within_25pct: bool
    in_bracket: bool | None = None


class CheckRow(Row):
    """The simulator against one of a design's published figures (:class:`sparseattn.report.validation.Check`)."""

    design: str
    figure: str
    published: float
    ours: float
    note: str = ""
    restates: str = ""
    ratio: float
    within_25pct: bool
    independent: bool


class ReproduceRow(Row):
    """The papers' headline claims and the simulator's validation, recomputed."""

    claims: list[ClaimRow]
    validation: list[CheckRow]


# ------------------------------------------------------------------------------------------------ spatial, dse, kernels
class SpatialRow(Row):
    """One (design, sequence length) point of the Spatial-STAR sweep (:func:`sparseattn.hw.spatial.sweep.run`)."""

    model_config = ConfigDict(extra="allow", frozen=True)  # the sweep's full row; the report reads these fields

    design: str
    arch: str
    seq: int
    dataflow: str
    tokens_per_s: float
    latency_s: float
    mean_core_utilisation: float
    bottleneck: str


class NotRun(Row):
    """A step that ran but had nothing to measure here, and why."""

    run: bool = False
    reason: str


class TrialRow(Row):
    """A trial of the design-space search (:class:`sparseattn.dse.records.TrialRecord`)."""

    number: int
    state: str
    point: dict[str, Any]
    objectives: dict[str, float] | None
    feasible: bool
    reasons: list[str] = []
    constraints: dict[str, float] = {}
    metrics: dict[str, float] = {}
    seconds: float = 0.0
    error: str | None = None
    duplicate_of: int | None = None


class BaselineRow(Row):
    """The shipped mapping evaluated (:class:`sparseattn.dse.evaluate.TrialOutcome`)."""

    values: list[float] | None
    constraints: dict[str, float]
    feasible: bool
    reasons: list[str] = []
    metrics: dict[str, float] = {}
    error: str | None = None
    seconds: float = 0.0


class DseRow(Row):
    """The STAR tiling search's summary: the space, trials, the default mapping and the best trials."""

    space: str
    objectives: list[str]
    parameters: list[str]
    grid_size: int
    trials: int
    feasible: int
    baseline: BaselineRow | None
    best: list[TrialRow]
    wall_s: float


class KernelRow(Row):
    """The Triton kernel against PyTorch SDPA at one length (measured, ms)."""

    tokens: int
    sdpa_ms: float
    star_gpu_ms: float
    speedup: float


# ------------------------------------------------------------------------------------------------ calibration
class CalibrationRow(Row):
    """A method calibrated to one loss budget (:class:`sparseattn.eval.calibrate.CalibrationRow` with its gap)."""

    model: str
    kind: str
    method: str
    budget: float
    reached: bool
    params: dict[str, Any]
    calib_text: str
    calib_loss: float
    calib_density: float
    judge_text: str
    judge_loss: float
    judge_density: float
    evaluations: int
    seconds: float
    note: str = ""
    calib_layer_density: dict[int, float] = {}
    judge_layer_density: dict[int, float] = {}
    gap: float
    judged_on_budget: bool | None  # None: the budget was not reached, so there is nothing to judge
    measurable: bool = True  # False: the knob leaves the density unchanged on this window; nothing was calibrated


class CalibratedHardwareRow(HardwareRow):
    """An accelerator simulated on its method's trace at the setting calibrated to ``budget``."""

    budget: float


# ------------------------------------------------------------------------------------------------ the run
class ReportConfig(Protocol):
    """What the report reads of the run's configuration (:class:`sparseattn.job.config.RunConfig`)."""

    model: str
    encoder: str | None
    gpus: list[str]
    quick: bool
    decoder_shape: str
    decoder_seq: int
    calib_tokens: int


@dataclass(frozen=True)
class RunView:
    """One run's results as the report reads them: where it is written, its configuration, each step's units as
    typed rows (``units[step][unit]``) and the page's metadata (configuration, environment, seconds per step)."""

    out: Path
    config: ReportConfig
    units: Mapping[str, Mapping[str, Any]]
    meta: Mapping[str, Any] = field(default_factory=dict)

    def accuracy(self) -> dict[str, AccuracyRow]:
        return _typed(self.units.get("accuracy", {}), AccuracyRow)

    def encoder(self) -> dict[str, EncoderRow]:
        return _typed(self.units.get("encoder", {}), EncoderRow)

    def hardware(self) -> dict[str, HardwareRow]:
        return _typed(self.units.get("hardware", {}), HardwareRow)

    def reproduce(self) -> ReproduceRow | None:
        return self.units.get("reproduce", {}).get("claims")

    def claims(self) -> list[ClaimRow]:
        r = self.reproduce()
        return r.claims if r is not None else []

    def spatial(self) -> list[SpatialRow] | NotRun | None:
        return self.units.get("spatial", {}).get("rows")

    def dse(self) -> DseRow | None:
        return self.units.get("dse", {}).get("summary")

    def kernels(self) -> list[KernelRow] | NotRun | None:
        return self.units.get("kernels", {}).get("rows")

    def calibration(self) -> dict[str, list[CalibrationRow]]:
        return dict(self.units.get("calibration", {}))

    def calibration_hw(self) -> dict[str, CalibratedHardwareRow]:
        return _typed(self.units.get("calibration_hw", {}), CalibratedHardwareRow)


def _typed(units: Mapping[str, Any], kind: type) -> dict[str, Any]:
    """``units`` as a dict, each checked to be a ``kind`` (a step that stored something else is a bug)."""
    bad = [u for u, r in units.items() if not isinstance(r, kind)]
    if bad:
        raise TypeError(f"units {bad} are not {kind.__name__} rows")
    return dict(units)
