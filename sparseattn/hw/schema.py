"""Architecture schema: an accelerator or a GPU described in YAML and validated by pydantic.

Like Timeloop's spec, an architecture file says nothing about the workload: the same trace runs on every
architecture. An accelerator has

* ``units`` -- compute units (MAC arrays, systolic arrays, bit-serial lanes, adder trees, leading-zero /
  shift-add log units, sorters, exp and divide units): how many PEs, operand width, operations per PE per
  cycle and which trace operations (``stage/op`` patterns, ``*`` matches anything) they execute;
* ``buffers`` -- on-chip SRAMs (KB, banks, port width, which tensors they hold);
* ``dram`` -- kind, bandwidth, pJ/bit, latency and attained bandwidth fraction;
* ``dataflow`` -- default tiling and the reuse rules (cross-stage K reuse, GQA sharing, reads that a method
  replaces with its own, e.g. PADE's bit planes);
* ``published`` -- the paper's own area / power / node / clock, for side-by-side reporting;
* ``iso`` -- the iso-setting a baseline can be normalised to (PADE's Table III: 28 nm, 800 MHz, 352 KB SRAM,
  256 GB/s HBM, equal PE-array area).

A bad file raises :class:`ConfigError` naming the key path (``units.2.kind``) and the allowed values.
"""

from __future__ import annotations

import fnmatch
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator, model_validator

from ..core.errors import InvalidParameterError
from ..core.workload import BASE_TILE, OPS, STAGES

CONFIG_DIR = Path(__file__).parent / "configs"
TENSORS = ("q", "k", "v", "o", "scores", "weights", "x", "other")


class ConfigError(InvalidParameterError):
    """An architecture, workload or technology file is invalid; the message names the key path."""


def validated(model: Any, data: Any, where: str) -> Any:
    """Validate ``data`` as ``model`` (a pydantic model or annotated type); errors are rewritten as
    ``where: key.path: problem (got value)``."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping at the top level, got {type(data).__name__}")
    try:
        return TypeAdapter(model).validate_python(data)
    except ValidationError as err:
        lines = []
        for e in err.errors():
            loc = list(e["loc"])
            if loc and loc[0] in ("accelerator", "gpu"):  # the discriminated union's tag
                loc = loc[1:]
            path = ".".join(str(p) for p in loc) or "<top>"
            got = "" if e["type"] == "missing" else f" (got {e.get('input')!r})"
            lines.append(f"  {path}: {e['msg']}{got}")
        raise ConfigError(f"{where}: invalid configuration\n" + "\n".join(lines)) from None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class UnitKind(str, Enum):
    MAC_ARRAY = "mac_array"
    SYSTOLIC_ARRAY = "systolic_array"
    BIT_SERIAL_LANES = "bit_serial_lanes"
    ADDER_TREE = "adder_tree"
    LOG_UNIT = "log_unit"  # leading-zero encoders and shift-add arrays (DLZS)
    SORTER = "sorter"  # comparators / top-k engines
    EXP_UNIT = "exp_unit"
    DIV_UNIT = "div_unit"
    VECTOR_UNIT = "vector_unit"


# Arithmetic one PE of each kind contains (for its bottom-up area), in units of trace operations.
PE_CONTENTS: dict[UnitKind, dict[str, float]] = {
    UnitKind.MAC_ARRAY: {"mac": 1},
    UnitKind.SYSTOLIC_ARRAY: {"mac": 1},
    UnitKind.BIT_SERIAL_LANES: {"add": 1},  # times ops_per_cycle: one adder per AND-tree input
    UnitKind.ADDER_TREE: {"add": 1},
    UnitKind.LOG_UNIT: {"add": 1, "shift": 1},
    UnitKind.SORTER: {"compare": 1},
    UnitKind.EXP_UNIT: {"exp": 1},
    UnitKind.DIV_UNIT: {"div": 1},
    UnitKind.VECTOR_UNIT: {"add": 1, "mul": 1},
}


def _check_pattern(pattern: str) -> str:
    stage, sep, op = pattern.partition("/")
    if not sep:
        raise ValueError(f"pattern {pattern!r} must be 'stage/op' (either may be '*')")
    if stage != "*" and stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r} in {pattern!r}; allowed: {', '.join(STAGES)} or *")
    if op != "*" and op not in OPS:
        raise ValueError(f"unknown op {op!r} in {pattern!r}; allowed: {', '.join(OPS)} or *")
    return pattern


class ComputeUnit(_Strict):
    """A group of identical processing elements."""

    name: str
    kind: UnitKind
    count: int = Field(gt=0, description="processing elements")
    bits: int = Field(ge=1, le=64, description="operand width of one PE")
    executes: list[str] = Field(min_length=1, description="trace operations it runs, as 'stage/op' patterns")
    ops_per_cycle: float | dict[str, float] = Field(default=1.0, description="per PE per cycle, or by op")
    concurrent: bool = Field(default=False, description="different ops of one PE proceed in the same cycle")
    subword: bool = Field(default=False, description="narrower operands pack bits // op_bits per PE")
    utilisation: float = Field(default=1.0, gt=0, le=1, description="attained fraction of peak (paper's model)")
    rows: int | None = Field(default=None, gt=0, description="systolic array height (with cols: fill/drain model)")
    cols: int | None = Field(default=None, gt=0)
    overlap_folds: bool = Field(
        default=True, description="consecutive folds overlap their fill/drain (False: SCALE-Sim's fold-by-fold model)"
    )
    area_mm2: float | None = Field(default=None, gt=0, description="published area (overrides the bottom-up one)")

    _check_executes = field_validator("executes")(lambda cls, v: [_check_pattern(p) for p in v])

    @field_validator("ops_per_cycle")
    @classmethod
    def _positive(cls, v: float | dict[str, float]) -> float | dict[str, float]:
        values = v.values() if isinstance(v, dict) else [v]
        if any(x <= 0 for x in values):
            raise ValueError("ops_per_cycle must be > 0")
        if isinstance(v, dict) and (bad := sorted(set(v) - set(OPS))):
            raise ValueError(f"unknown ops {bad}; allowed: {', '.join(OPS)}")
        return v

    @model_validator(mode="after")
    def _systolic_shape(self) -> ComputeUnit:
        if (self.rows is None) != (self.cols is None):
            raise ValueError("rows and cols go together")
        if self.rows is not None and self.rows * self.cols != self.count:
            raise ValueError(f"rows x cols ({self.rows}x{self.cols}) must equal count ({self.count})")
        return self

    def runs(self, stage: str, op: str) -> bool:
        return any(fnmatch.fnmatchcase(f"{stage}/{op}", p) for p in self.executes)

    def rate(self, op: str) -> float:
        """Operations of kind ``op`` one PE completes per cycle."""
        if isinstance(self.ops_per_cycle, dict):
            return self.ops_per_cycle.get(op, 1.0)
        return self.ops_per_cycle


class Buffer(_Strict):
    name: str
    kb: float = Field(gt=0)
    banks: int = Field(default=1, ge=1)
    port_bits: int = Field(default=512, ge=8)
    holds: list[Literal["q", "k", "v", "o", "scores", "weights", "x", "other"]] = Field(min_length=1)


class Dram(_Strict):
    kind: Literal["hbm2", "hbm2e", "hbm3", "gddr5", "ddr4", "lpddr4"]
    gbps: float = Field(gt=0, description="peak bandwidth, GB/s")
    pj_per_bit: float | None = Field(default=None, gt=0, description="overrides the technology table")
    latency_ns: float = Field(default=100.0, ge=0)
    efficiency: float = Field(default=0.8, gt=0, le=1, description="attained fraction of peak bandwidth")


class Dataflow(_Strict):
    q_tile: int = Field(gt=0, description="query rows per tile")
    k_tile: int = Field(gt=0, description="keys per tile (granularity of K/V fetches)")
    kv_bits: int = Field(default=16, ge=1, le=32, description="bits per K/V element in DRAM")
    q_bits: int = Field(default=16, ge=1, le=32)
    score_bits: int = Field(default=16, ge=1, le=32)
    predict_k_bits: int | None = Field(default=None, ge=1, le=32, description="predictor's own K read, if any")
    cross_stage_reuse: bool = Field(default=False, description="K read for prediction is reused by formal compute")
    gqa_share: bool = Field(default=True, description="heads of a KV group fetch shared K/V once per tile")
    pipelined: bool = Field(default=True, description="stages overlap across tiles (cross-stage pipelining)")
    double_buffered: bool = Field(default=True, description="DRAM transfers overlap compute")
    replace_reads: dict[Literal["k", "v"], str] = Field(
        default_factory=dict, description="tensor -> the trace's extra read that replaces its dense traffic"
    )

    @field_validator("q_tile", "k_tile")
    @classmethod
    def _multiple_of_base(cls, v: int) -> int:
        if v % BASE_TILE:
            raise ValueError(f"must be a multiple of the profile's base tile {BASE_TILE}")
        return v


class Published(_Strict):
    area_mm2: float | None = Field(default=None, gt=0)
    power_mw: float | None = Field(default=None, gt=0)
    node_nm: float | None = Field(default=None, gt=0)
    clock_mhz: float | None = Field(default=None, gt=0)
    gops: float | None = Field(default=None, gt=0)
    gops_per_w: float | None = Field(default=None, gt=0)
    gops_per_mm2: float | None = Field(default=None, gt=0)
    source: str = ""


class IsoSetting(_Strict):
    """PADE's Table III normalisation for every baseline."""

    node_nm: float = Field(default=28, gt=0)
    clock_mhz: float = Field(default=800, gt=0)
    sram_kb: float = Field(default=352, gt=0)
    dram_kind: Literal["hbm2", "hbm2e", "hbm3", "gddr5", "ddr4", "lpddr4"] = "hbm2"
    dram_gbps: float = Field(default=256, gt=0)
    pe_area_of: str = Field(default="pade", description="architecture whose PE-array area every baseline gets")


class AcceleratorArch(_Strict):
    kind: Literal["accelerator"] = "accelerator"
    name: str
    description: str = ""
    source: str = ""
    method: str = Field(description="the method whose trace this architecture executes")
    clock_mhz: float = Field(gt=0)
    node_nm: float = Field(gt=0)
    vdd: float | None = Field(default=None, gt=0, description="supply voltage (nominal for the node when omitted)")
    units: list[ComputeUnit] = Field(min_length=1)
    buffers: list[Buffer] = Field(min_length=1)
    dram: Dram
    dataflow: Dataflow
    published: Published = Published()
    iso: IsoSetting | None = None
    normalised: str = Field(default="published", description="'published' or the iso-setting it was scaled to")

    @model_validator(mode="after")
    def _unique_names(self) -> AcceleratorArch:
        for what, items in (("units", self.units), ("buffers", self.buffers)):
            names = [i.name for i in items]
            if len(set(names)) != len(names):
                raise ValueError(f"{what} names must be unique, got {names}")
        return self

    @property
    def sram_kb(self) -> float:
        return sum(b.kb for b in self.buffers)

    def buffer_for(self, tensor: str) -> list[Buffer]:
        return [b for b in self.buffers if tensor in b.holds]


class GpuArch(_Strict):
    kind: Literal["gpu"] = "gpu"
    name: str
    description: str = ""
    source: str = ""
    peak_tflops: dict[str, float] = Field(description="dense tensor-core peak by dtype (bf16, fp16, int8, ...)")
    hbm_gbps: float = Field(gt=0)
    compute_efficiency: float = Field(gt=0, le=1, description="attained fraction of peak on attention")
    memory_efficiency: float = Field(default=0.9, gt=0, le=1)
    board_power_w: float = Field(gt=0, description="board power while running attention")
    launch_overhead_us: float = Field(default=0.0, ge=0)
    node_nm: float = Field(gt=0)
    die_area_mm2: float = Field(gt=0)
    clock_mhz: float = Field(gt=0)


Arch = Annotated[AcceleratorArch | GpuArch, Field(discriminator="kind")]


def arch_names() -> list[str]:
    """Architectures bundled in ``configs/`` (every YAML file but the technology table)."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml") if p.stem != "technology")


def find_file(name_or_path: str | Path, directory: Path, suffix: str, what: str, bundled: list[str],
              hint: str = "") -> Path:
    """A bundled file by name (``directory/name.suffix``) or any existing file by path, else a clear error."""
    path = Path(name_or_path)
    if path.suffix not in (suffix, ".yml" if suffix == ".yaml" else suffix):
        path = directory / f"{name_or_path}{suffix}"
        if not path.exists():
            raise ConfigError(f"unknown {what} {str(name_or_path)!r}; bundled: {', '.join(bundled)}{hint}")
    elif not path.exists():
        raise ConfigError(f"{what} file {str(path)!r} does not exist")
    return path


def read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None


def load_arch(name_or_path: str | Path) -> AcceleratorArch | GpuArch:
    """A bundled architecture by name (``"pade"``) or any YAML file by path."""
    path = find_file(name_or_path, CONFIG_DIR, ".yaml", "architecture", arch_names())
    return validated(Arch, read_yaml(path), str(path))
