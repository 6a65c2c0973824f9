"""The search-space file: what a design-space search varies, what it measures and what a point must satisfy.

A space is a YAML file (bundled examples in ``sparseattn/dse/spaces/``; any user file), validated by pydantic
(:class:`SpaceFile`) and then resolved against the real architecture, mapping and method parameter models
(:func:`~sparseattn.dse.resolve.resolve`). Schema (defaults in brackets)::

    name: star-tiling                    # the study's default name
    description: ...
    workload:
      arch: star                         # bundled architecture or a YAML path (relative to this file)
      shape: llama2-7b                   # [llama2-7b] bundled model shape or a YAML path
      seq: 4096                          # [4096] prefill tokens
      batch: 1                           # [1]
      trace: null                        # [the architecture's own bundled trace] a trace name or JSON path
      method_params: {}                  # [{}] fixed method parameters (a trace is then computed, see qkv.py)
      density: null                      # [null] rescale the trace's kept-pair work to this density
    parameters:                          # what varies; each sets one or more dotted paths to the same value
      - name: k_tile                     # [derived from the path]
        paths: [mapping.formal.k, mapping.predict.k]   # or `path: ...` (one)
        values: [32, 64, 128]            # choices (numbers are searched as an ordered index) ...
      - path: units.exp.count
        low: 64                          # ... or a range: low, high, [step], [log]
        high: 512
        log: true
      - path: method.Tc                  # method parameters: `method.<name>`
        values: [2, 4, 8, 16, 32]
        per_layer: [2, 7]                # one parameter per layer (`Tc.2`, `Tc.7`) of a per-layer list
    objectives: [latency_ms, dram_mb]    # any subset (see objectives.py); several give a Pareto front
    constraints:
      area_mm2_max: 6.0                  # [none] area budget
      sram_kb_max: null                  # [none] total on-chip SRAM budget
      # buffers must always fit the mapping's tiles (hw.check_fit)
    accuracy:                            # the eval harness behind accuracy objectives and computed traces
      model: smollm2-135m                # [smollm2-135m]
      text: moby-dick                    # [moby-dick]
      n_tokens: 1024                     # [1024]
      layers: [2, 7, 12, 17, 22, 27]     # [the per-layer parameters' layers, else every layer]
      mode: joint                        # [joint] one table entry per method point; per_layer: additive per layer
      max_points: 256                    # [256] most model runs the table may need before the study starts
      cache_dir: null                    # [$SPARSEATTN_CACHE or ~/.cache/sparseattn]/dse
    search:                              # defaults of `sparseattn dse run` (the command line overrides them)
      sampler: tpe                       # [tpe] tpe | gp | grid | random
      n_trials: 60                       # [60]
      seed: 0                            # [0]

Arch paths are those of :func:`~sparseattn.hw.with_overrides` (``units.<name>.count``, ``buffers.<name>.kb``,
``dram.gbps``, ``operands.kv_bits``, ``mapping.formal.q``, ...); ``method.<name>`` is a parameter of the
workload's method (``sparseattn methods`` lists them).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..core.errors import describe_validation_error
from ..hw.config import ConfigError, read_yaml

SPACE_DIR = Path(__file__).parent / "spaces"
SAMPLERS = ("tpe", "gp", "grid", "random")


class SpaceError(ConfigError):
    """A search-space file is invalid: a bad range, an unknown path, a value the model refuses, or constraints
    no point satisfies; the message names the parameter."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


class Parameter(_Strict):
    """One searched quantity: a set of choices or a range, written to one or more dotted paths."""

    name: str | None = Field(default=None, description="display and storage name (default: the first path less "
                             "its mapping./method. prefix)")
    path: str | None = None
    paths: list[str] | None = Field(default=None, min_length=1)
    values: list[Any] | None = Field(default=None, description="choices")
    low: int | float | None = None
    high: int | float | None = None
    step: int | float | None = Field(default=None, gt=0)
    log: bool = False
    per_layer: list[int] | None = Field(default=None, min_length=1, description="one parameter per layer")

    @model_validator(mode="after")
    def _check(self) -> Parameter:
        if (self.path is None) == (self.paths is None):
            raise ValueError("give exactly one of `path` or `paths`")
        if (self.values is None) == (self.low is None and self.high is None):
            raise ValueError("give either `values` (choices) or a range `low`/`high`")
        if self.values is not None:
            _check_values(self.values, self.step, self.log)
        else:
            _check_range(self.low, self.high, self.step, self.log)
        if self.per_layer is not None:
            if not all(t.startswith("method.") for t in self.targets):
                raise ValueError("per_layer applies to method parameters only (paths `method.<name>`)")
            if any(layer < 0 for layer in self.per_layer) or len(set(self.per_layer)) != len(self.per_layer):
                raise ValueError(f"per_layer must list distinct layer indices >= 0, got {self.per_layer}")
        return self

    @property
    def targets(self) -> list[str]:
        return [self.path] if self.path is not None else list(self.paths or [])

    @property
    def label(self) -> str:
        return self.name or self.targets[0].removeprefix("method.").removeprefix("mapping.")

    @property
    def is_int(self) -> bool:
        return self.values is None and _is_int(self.low) and _is_int(self.high) and (
            self.step is None or _is_int(self.step))


def _check_values(values: list[Any], step: float | None, log: bool) -> None:
    if not values:
        raise ValueError("`values` is empty: give at least one choice")
    if step is not None or log:
        raise ValueError("`step` and `log` go with a range (low/high), not with `values`")
    keys = [repr(v) for v in values]
    if len(set(keys)) != len(keys):
        raise ValueError(f"`values` has duplicates: {values}")


def _check_range(low: float | None, high: float | None, step: float | None, log: bool) -> None:
    if low is None or high is None:
        raise ValueError("a range needs both `low` and `high`")
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"range bounds must be finite, got low={low}, high={high}")
    if low >= high:
        raise ValueError(f"empty range: low ({low}) must be below high ({high}); for one value use `values: [{low}]`")
    if log and low <= 0:
        raise ValueError(f"a log range needs low > 0, got {low}")
    if log and step is not None:
        raise ValueError("`log` and `step` cannot be combined (Optuna's distributions refuse it)")
    if step is not None:
        n = (high - low) / step
        if abs(n - round(n)) > 1e-9:
            raise ValueError(f"high - low ({high - low}) must be a multiple of step ({step})")


class WorkloadSpec(_Strict):
    """What every trial simulates: architecture, model shape, sequence length and trace."""

    arch: str
    shape: str = "llama2-7b"
    seq: int = Field(default=4096, ge=16, le=2**32, description="prefill tokens (one base tile .. the bound)")
    batch: int = Field(default=1, gt=0, le=2**16)
    trace: str | None = None
    method_params: dict[str, Any] = Field(default_factory=dict)
    density: float | None = Field(default=None, gt=0, le=1)


class ObjectiveSpec(_Strict):
    """An objective by name, with options for the ones that take them (SOFA's ``alpha``/``beta``)."""

    name: str
    paper_model: str | None = Field(default=None, description="sofa: the paper's alpha/beta for this model")
    alpha: float | None = Field(default=None, ge=0, description="sofa: weight of the sorting cost")
    beta: float | None = Field(default=None, ge=0, description="sofa: weight of the exponent cost")
    exp_cost: Literal["paper", "normalised"] = Field(
        default="paper", description="sofa: L_exp as printed (sum of Tc_i) or divided by layers x max Tc")


class Constraints(_Strict):
    area_mm2_max: float | None = Field(default=None, gt=0, description="area budget")
    sram_kb_max: float | None = Field(default=None, gt=0, description="total on-chip SRAM budget")


class AccuracySpec(_Strict):
    model: str = "smollm2-135m"
    text: str = "moby-dick"
    n_tokens: int = Field(default=1024, ge=16)
    layers: list[int] | None = Field(default=None, min_length=1)
    mode: Literal["joint", "per_layer"] = "joint"
    max_points: int = Field(default=256, ge=1)
    cache_dir: str | None = None


class SearchDefaults(_Strict):
    sampler: Literal["tpe", "gp", "grid", "random"] = "tpe"
    n_trials: int = Field(default=60, ge=1)
    seed: int = 0


class SpaceFile(_Strict):
    """A search-space file as written (see the module docstring); :func:`resolve` checks it against the models."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    workload: WorkloadSpec
    parameters: list[Parameter] = Field(min_length=1)
    objectives: list[ObjectiveSpec] = Field(min_length=1)
    constraints: Constraints = Constraints()
    accuracy: AccuracySpec = AccuracySpec()
    search: SearchDefaults = SearchDefaults()
    base_dir: str = Field(default=".", description="where relative paths are resolved (the file's directory)")

    @field_validator("objectives", mode="before")
    @classmethod
    def _names(cls, v: Any) -> Any:
        return [{"name": o} if isinstance(o, str) else o for o in v] if isinstance(v, list) else v

    @model_validator(mode="after")
    def _unique(self) -> SpaceFile:
        labels = [p.label for p in self.parameters]
        if len(set(labels)) != len(labels):
            raise ValueError(f"parameter names must be unique, got {labels} (set `name:` to tell them apart)")
        names = [o.name for o in self.objectives]
        if len(set(names)) != len(names):
            raise ValueError(f"objectives must be distinct, got {names}")
        return self

    def relative(self, value: str) -> str:
        """``value`` as a path relative to the space file when it names an existing file there, else unchanged."""
        candidate = Path(self.base_dir) / value
        return str(candidate) if value.endswith((".yaml", ".yml", ".json")) and candidate.exists() else value


def space_names() -> list[str]:
    """Search spaces bundled in ``spaces/``."""
    return sorted(p.stem for p in SPACE_DIR.glob("*.yaml"))


def space_path(name_or_path: str | Path) -> Path:
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = SPACE_DIR / f"{name_or_path}.yaml"
        if not path.exists():
            raise SpaceError(f"unknown search space {str(name_or_path)!r}; bundled: {', '.join(space_names())}")
    elif not path.exists():
        raise SpaceError(f"search-space file {str(path)!r} does not exist")
    return path


def parse_space(data: Any, where: str = "<space>", base_dir: str | Path = ".") -> SpaceFile:
    """Validate a parsed space (a dict) as a :class:`SpaceFile`; errors name ``where`` and the key path."""
    if not isinstance(data, dict):
        raise SpaceError(f"{where}: expected a mapping at the top level, got {type(data).__name__}")
    data = {"base_dir": str(base_dir), **data}
    try:
        return SpaceFile.model_validate(data)
    except ValidationError as err:
        raise SpaceError(describe_validation_error(err, f"{where}: invalid search space")) from None


def read_space(name_or_path: str | Path) -> SpaceFile:
    """A bundled space by name (``"star-tiling"``) or a YAML file by path, validated (not yet resolved)."""
    path = space_path(name_or_path)
    return parse_space(read_yaml(path), str(path), path.parent.resolve())
