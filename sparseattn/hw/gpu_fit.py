"""Fitting the GPU models' free terms to measurements taken by ``benchmarks/measure_gpu_attention.py``.

The measurement file (:class:`Measurements`, JSON) holds the board's idle power and one record per run: the
implementation (``eager`` PyTorch attention, ``sdpa``), the attention shape of one layer, the median time and the
mean board power while it ran. Three fits, each a least-squares fit of relative (log) error:

* :func:`fit_flash_efficiency` -- the FlashAttention roofline's ``compute_efficiency`` (one factor) to SDPA runs;
* :func:`fit_eager` -- eager attention's ``launch_us``, ``gemm_efficiency`` and ``memory_efficiency`` (a grid search
  refined around its best point: the model is a sum of ``max`` terms, not smooth);
* :func:`fit_busy_power` -- the board power of a fully busy GPU, from the mean power of each run and the idle power.

Every fit returns the fitted values with its error (:class:`Fit`: RMS and worst relative error), which the report
states. Until a GPU has been measured the configuration values are assumptions and the report says "unmeasured".
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import Field

from ..core.shape import Shape
from .config import StrictModel, read_yaml, validated
from .gpu_power import wall_seconds
from .schema import GpuArch


class Run(StrictModel):
    """One measured run: one layer of attention, timed (median ms) with the board power while it ran."""

    impl: Literal["eager", "sdpa"]
    model: str = ""
    phase: Literal["prefill", "decode"] = "prefill"
    batch: int = Field(ge=1)
    heads: int = Field(ge=1)
    kv_heads: int = Field(ge=1)
    q_len: int = Field(ge=1)
    k_len: int = Field(ge=1)
    head_dim: int = Field(ge=1)
    causal: bool
    dtype: Literal["fp16", "bf16", "fp32"]
    ms: float = Field(gt=0)
    power_w: float | None = Field(default=None, gt=0)

    @property
    def shape(self) -> Shape:
        return Shape(batch=self.batch, heads=self.heads, kv_heads=self.kv_heads, q_len=self.q_len,
                     k_len=self.k_len, head_dim=self.head_dim, causal=self.causal)


class Measurements(StrictModel):
    device: str
    idle_power_w: float | None = Field(default=None, gt=0)
    runs: list[Run] = Field(min_length=1)
    notes: list[str] = Field(default_factory=list)


def load_measurements(path: str | Path) -> Measurements:
    """A measurement file (JSON or YAML) written by ``benchmarks/measure_gpu_attention.py``."""
    return validated(Measurements, read_yaml(Path(path)), str(path))


@dataclass
class Fit:
    """Fitted values and the relative error of the model at them over the runs used."""

    values: dict[str, float]
    rms_error: float
    max_error: float
    runs: int
    errors: list[float] = field(default_factory=list)


def _errors(model: Callable[[Run], float], runs: Sequence[Run]) -> list[float]:
    return [model(r) / (r.ms * 1e-3) - 1 for r in runs]


def _score(model: Callable[[Run], float], runs: Sequence[Run]) -> float:
    return sum(math.log(model(r) / (r.ms * 1e-3)) ** 2 for r in runs)


def _fit(errors: list[float], values: dict[str, float]) -> Fit:
    return Fit(values, math.sqrt(sum(e * e for e in errors) / len(errors)), max(abs(e) for e in errors),
               len(errors), errors)


def _kernels(gpu: GpuArch, run: Run) -> list:
    """The model's kernel timeline of a measured run (its implementation, not the configuration's)."""
    from .gpu import gpu_kernels

    return gpu_kernels(gpu.model_copy(update={"kernel": "eager" if run.impl == "eager" else "flash"}), run.shape,
                       run.dtype)


def _seconds(gpu: GpuArch, run: Run) -> float:
    return wall_seconds(_kernels(gpu, run))


def _select(runs: Sequence[Run], impl: str) -> list[Run]:
    chosen = [r for r in runs if r.impl == impl]
    if not chosen:
        raise ValueError(f"no {impl!r} runs to fit")
    return chosen


def fit_flash_efficiency(gpu: GpuArch, runs: Sequence[Run], lo: float = 0.05, hi: float = 1.0) -> Fit:
    """``compute_efficiency`` minimising the squared log error over the ``sdpa`` runs (golden-section search)."""
    runs = _select(runs, "sdpa")

    def score(e: float) -> float:
        g = gpu.model_copy(update={"compute_efficiency": e})
        return _score(lambda r: _seconds(g, r), runs)

    a, b = lo, hi
    ratio = (math.sqrt(5) - 1) / 2
    for _ in range(60):
        c, d = b - ratio * (b - a), a + ratio * (b - a)
        if score(c) < score(d):
            b = d
        else:
            a = c
    best = (a + b) / 2
    g = gpu.model_copy(update={"compute_efficiency": best})
    return _fit(_errors(lambda r: _seconds(g, r), runs), {"compute_efficiency": best})


def _eager_gpu(gpu: GpuArch, launch: float, gemm: float, memory: float) -> GpuArch:
    eager = gpu.eager.model_copy(update={"launch_us": launch, "gemm_efficiency": gemm, "memory_efficiency": memory})
    return gpu.model_copy(update={"kernel": "eager", "eager": eager})


def fit_eager(gpu: GpuArch, runs: Sequence[Run], rounds: int = 3) -> Fit:
    """``eager.launch_us``, ``gemm_efficiency`` and ``memory_efficiency`` minimising the squared log error over
    the ``eager`` runs: a 9 x 9 x 9 grid, refined ``rounds`` times around its best point."""
    runs = _select(runs, "eager")
    spans = {"launch": (0.5, 50.0), "gemm": (0.05, 1.0), "memory": (0.1, 1.0)}
    best: tuple[float, float, float] = (gpu.eager.launch_us, gpu.eager.gemm_efficiency, gpu.eager.memory_efficiency)
    for _ in range(rounds + 1):
        grids = [[math.exp(math.log(lo) + i * (math.log(hi) - math.log(lo)) / 8) for i in range(9)]
                 for lo, hi in spans.values()]
        best = min(itertools.product(*grids),
                   key=lambda p: _score(lambda r, p=p: _seconds(_eager_gpu(gpu, *p), r), runs))
        spans = {k: (max(lo, v / 1.6), min(hi, v * 1.6)) for (k, (lo, hi)), v in
                 zip(spans.items(), best, strict=True)}
    g = _eager_gpu(gpu, *best)
    return _fit(_errors(lambda r: _seconds(g, r), runs),
                {"launch_us": best[0], "gemm_efficiency": best[1], "memory_efficiency": best[2]})


def fit_busy_power(gpu: GpuArch, runs: Sequence[Run], idle_w: float) -> Fit:
    """The board power of a fully busy GPU, ``P_busy``, from each run's mean power ``idle + (P_busy - idle) x
    activity`` (activity: the model's SM-activity-weighted busy fraction of the run); least squares in watts."""
    pts = []
    for r in runs:
        if r.power_w is None:
            continue
        kernels = _kernels(gpu, r)
        activity = sum(k.activity * k.busy_s for k in kernels) / wall_seconds(kernels)
        pts.append((activity, r.power_w - idle_w))
    if not pts:
        raise ValueError("no run carries a power reading")
    slope = sum(a * p for a, p in pts) / sum(a * a for a, _ in pts)
    busy = idle_w + slope
    errors = [(idle_w + slope * a) / (idle_w + p) - 1 for a, p in pts]
    return _fit(errors, {"busy_power_w": busy, "idle_power_w": idle_w})


# ---------------------------------------------------------------------------------------------- measured model
FITTERS: dict[str, Callable[[GpuArch, Measurements], Fit]] = {
    "eager": lambda gpu, m: fit_eager(gpu, m.runs),
    "flash": lambda gpu, m: fit_flash_efficiency(gpu, m.runs),
    "power": lambda gpu, m: fit_busy_power(gpu, m.runs, m.idle_power_w or gpu.idle_power_w),
}


def fit_all(gpu: GpuArch, m: Measurements) -> tuple[dict[str, Fit], dict[str, dict]]:
    """Every fit the measurements allow (a fit without its runs -- no eager runs, no power readings -- is skipped
    with the reason); returns the fits and a JSON-ready report of each (values and errors, or why skipped)."""
    fits: dict[str, Fit] = {}
    report: dict[str, dict] = {}
    for name, fitter in FITTERS.items():
        try:
            fits[name] = fitter(gpu, m)
        except ValueError as err:
            report[name] = {"skipped": str(err)}
            continue
        f = fits[name]
        report[name] = {"values": f.values, "rms_error": f.rms_error, "max_error": f.max_error, "runs": f.runs}
    return fits, report


def measured_arch(base: GpuArch, m: Measurements, fits: dict[str, Fit], source: str,
                  driver: str | None = None, torch_version: str | None = None) -> GpuArch:
    """``base`` (the assumed, datasheet model of the measured GPU) with its fitted terms replaced and the provenance
    recorded: the roofline's ``compute_efficiency``, eager attention's launch floor and efficiencies, the idle and
    busy board power. Its name is the base's with ``-measured`` (e.g. ``h200-measured``), beside the assumed one."""
    from .schema import GpuMeasurement, MeasuredFit

    update: dict[str, object] = {}
    if "flash" in fits:
        update["compute_efficiency"] = min(1.0, fits["flash"].values["compute_efficiency"])
    if "eager" in fits:
        update["eager"] = base.eager.model_copy(update=fits["eager"].values)
    if "power" in fits:
        update["idle_power_w"] = fits["power"].values["idle_power_w"]
        update["busy_power_w"] = fits["power"].values["busy_power_w"]
    provenance = GpuMeasurement(
        device=m.device, driver=driver, torch=torch_version, measurements=source, base=base.name,
        fits={k: MeasuredFit(values=f.values, rms_error=f.rms_error, max_error=f.max_error, runs=f.runs)
              for k, f in fits.items()})
    data = {**base.model_dump(), **update, "name": f"{base.name}-measured", "measured": provenance,
            "description": f"{base.description} -- terms fitted to measurements on {m.device}"}
    return GpuArch.model_validate(data)


def write_arch(arch: GpuArch, path: Path) -> None:
    """The GPU model as a YAML file that :func:`~sparseattn.hw.load_arch` reads (written atomically)."""
    import yaml

    from ..core.files import write_atomic

    write_atomic(path, yaml.safe_dump(arch.model_dump(mode="json", exclude_none=True), sort_keys=False))
