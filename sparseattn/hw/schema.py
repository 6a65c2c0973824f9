"""Architecture schema: an accelerator or a GPU described in YAML and validated by pydantic.

Like Timeloop's spec, an architecture file says nothing about the workload: the same trace runs on every
architecture. An accelerator has

* ``units`` -- compute units (MAC arrays, systolic arrays, bit-serial lanes, adder trees, leading-zero /
  shift-add log units, sorters, exp and divide units): how many PEs, operand width, operations per PE per
  cycle and which trace operations (``stage/op`` patterns, ``*`` matches anything) they execute;
* ``buffers`` -- on-chip SRAMs (KB, banks, port width, which tensors they hold);
* ``dram`` -- kind, bandwidth, pJ/bit, latency and attained bandwidth fraction;
* ``operands`` -- how operands are stored (bits per K/V, Q and score element in memory, the predictor's own K
  width) and the reads a design replaces with the trace's own (PADE fetches K as bit planes): hardware and
  format facts, not choices of a mapping;
* ``mapping`` -- the architecture's **default** mapping (tiles per stage, stage overlap, double buffering,
  cross-stage K reuse, GQA sharing, KV residency; :mod:`~sparseattn.hw.mapping`), kept in the same file but a
  separate input of the simulator;
* ``published`` -- the paper's own area / power / node / clock, for side-by-side reporting;
* ``iso`` -- the iso-setting a baseline can be normalised to (PADE's Table III: 28 nm, 800 MHz, 352 KB SRAM,
  256 GB/s HBM, equal PE-array area).

A bad file raises :class:`ConfigError` naming the key path (``units.2.kind``) and the allowed values. Which
schema a file is validated with is chosen by its ``kind`` through the registry (:mod:`~sparseattn.hw.registry`).
"""

from __future__ import annotations

import fnmatch
from enum import Enum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from ..core.workload import OPS, STAGES
from .config import ConfigError, StrictModel, find_file, read_yaml, validated
from .mapping import Mapping

CONFIG_DIR = Path(__file__).parent / "configs"
__all__ = ["CONFIG_DIR", "AcceleratorArch", "ConfigError", "GpuArch", "arch_names", "find_file", "load_arch",
           "read_yaml", "validated"]


_Strict = StrictModel


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


def _check_pattern(pattern: str) -> str:
    stage, sep, op = pattern.partition("/")
    if not sep:
        raise ValueError(f"pattern {pattern!r} must be 'stage/op' (either may be '*')")
    if stage != "*" and stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r} in {pattern!r}; allowed: {', '.join(STAGES)} or *")
    if op != "*" and op not in OPS:
        raise ValueError(f"unknown op {op!r} in {pattern!r}; allowed: {', '.join(OPS)} or *")
    return pattern


class BitSerialLanes(_Strict):
    """PADE's BS-OOE lane timing (section V-C; :mod:`~sparseattn.hw.bitserial`): each of the parallel query rows
    owns ``lanes_per_row`` lanes, its keys dealt to them round-robin; a lane keeps ``scoreboard`` keys in flight
    and waits ``plane_latency`` cycles between a key's plane requests."""

    lanes_per_row: int = Field(default=16, gt=0, le=4096, description="lanes one query row's keys are dealt to")
    scoreboard: int = Field(default=32, gt=0, le=4096, description="keys in flight per lane (1 = in-order issue)")
    plane_latency: float = Field(default=24, ge=0, le=1e6,
                                 description="cycles between a key's plane requests (assumption)")


class ComputeUnit(_Strict):
    """A group of identical processing elements."""

    name: str
    kind: UnitKind
    count: int = Field(gt=0, le=10**8, description="processing elements")
    bits: int = Field(ge=1, le=64, description="operand width of one PE")
    executes: list[str] = Field(min_length=1, description="trace operations it runs, as 'stage/op' patterns")
    ops_per_cycle: float | dict[str, float] = Field(default=1.0, description="per PE per cycle, or by op")
    concurrent: bool = Field(default=False, description="different ops of one PE proceed in the same cycle")
    subword: bool = Field(default=False, description="narrower operands pack bits // op_bits per PE")
    utilisation: float = Field(
        default=1.0, gt=0, le=1,
        description="attained fraction of peak (paper's model); with a lanes model, its fallback for traces "
        "without lane samples",
    )
    rows: int | None = Field(default=None, gt=0, le=10**5,
                             description="systolic array height (with cols: fill/drain model)")
    cols: int | None = Field(default=None, gt=0, le=10**5)
    overlap_folds: bool = Field(
        default=True, description="consecutive folds overlap their fill/drain (False: SCALE-Sim's fold-by-fold model)"
    )
    area_mm2: float | None = Field(default=None, gt=0, le=1e4,
                                   description="published area (overrides the bottom-up one)")
    truncates: bool = Field(
        default=False, description="a datapath of `bits` that drops the low bits of wider results: a wider op "
        "takes one pass and is priced at `bits` (SOFA's 16-bit shift-add array)")
    lanes: BitSerialLanes | None = Field(
        default=None, description="bit-serial lane timing model; utilisation is then modelled from the trace"
    )

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
        if self.lanes is not None and self.kind != UnitKind.BIT_SERIAL_LANES:
            raise ValueError(f"lanes (the bit-serial lane model) needs kind bit_serial_lanes, not {self.kind.value}")
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
    kb: float = Field(gt=0, le=1e7, description="capacity, KB (up to 10 GB)")
    banks: int = Field(default=1, ge=1, le=65536)
    port_bits: int = Field(default=512, ge=8, le=65536)
    holds: list[Literal["q", "k", "v", "o", "scores", "weights", "x", "other"]] = Field(min_length=1)


class Dram(_Strict):
    kind: Literal["hbm2", "hbm2e", "hbm3", "gddr5", "ddr4", "lpddr4"]
    gbps: float = Field(gt=0, le=1e5, description="peak bandwidth, GB/s")
    pj_per_bit: float | None = Field(default=None, gt=0, le=1000, description="overrides the technology table")
    latency_ns: float = Field(default=100.0, ge=0, le=1e6)
    efficiency: float = Field(default=0.8, gt=0, le=1, description="attained fraction of peak bandwidth")


class Operands(_Strict):
    """How operands are stored and fetched: hardware and format facts, not mapping choices."""

    kv_bits: int = Field(default=16, ge=1, le=32, description="bits per K/V element in DRAM")
    q_bits: int = Field(default=16, ge=1, le=32, description="bits per Q and O element")
    score_bits: int = Field(default=16, ge=1, le=32, description="bits per score held on chip")
    predict_k_bits: int | None = Field(default=None, ge=1, le=32, description="predictor's own K read, if any")
    replace_reads: dict[Literal["k", "v"], str] = Field(
        default_factory=dict, description="tensor -> the trace's extra read that replaces its dense traffic"
    )
    kv_source: Literal["dram", "generated"] = Field(
        default="dram", description="K/V read from DRAM, or generated on chip from the tokens X (SOFA's on-demand "
        "K/V generation, hw/kvgen.py)")
    x_bits: int = Field(default=8, ge=1, le=32, description="bits per token element X (kv_source: generated)")
    weight_bits: int = Field(default=16, ge=1, le=32, description="bits per W_k / W_v element for K/V generation")
    log_weight_bits: int = Field(default=5, ge=1, le=32,
                                 description="bits per log-format W_k element (sign + exponent) for K-hat")


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

    node_nm: float = Field(default=28, ge=1, le=1000)
    clock_mhz: float = Field(default=800, gt=0, le=1e4)
    sram_kb: float = Field(default=352, gt=0, le=1e7)
    dram_kind: Literal["hbm2", "hbm2e", "hbm3", "gddr5", "ddr4", "lpddr4"] = "hbm2"
    dram_gbps: float = Field(default=256, gt=0, le=1e5)
    pe_area_of: str = Field(default="pade", description="architecture whose PE-array area every baseline gets")


class AcceleratorArch(_Strict):
    kind: Literal["accelerator"] = "accelerator"
    name: str
    description: str = ""
    source: str = ""
    method: str = Field(description="the method whose trace this architecture executes")
    clock_mhz: float = Field(gt=0, le=1e4, description="clock, MHz (up to 10 GHz)")
    node_nm: float = Field(ge=1, le=1000, description="process node, nm")
    vdd: float | None = Field(default=None, ge=0.3, le=2.0,
                              description="supply voltage, V (nominal for the node when omitted)")
    units: list[ComputeUnit] = Field(min_length=1)
    buffers: list[Buffer] = Field(min_length=1)
    dram: Dram
    operands: Operands = Operands()
    mapping: Mapping = Field(description="the default mapping (tiles, overlap, reuse, residency)")
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


class EagerAttention(_Strict):
    """How eager PyTorch attention runs on a GPU (:mod:`~sparseattn.hw.gpu_eager`): the score matrix materialised
    between several kernels. Until measured (``benchmarks/measure_gpu_attention.py``, fitted by
    :mod:`~sparseattn.hw.gpu_fit`) the terms are stated assumptions."""

    matmul_dtype: Literal["fp16", "bf16", "fp32"] = Field(
        default="fp16", description="dtype of the two batched matmuls (autocast: fp16; fp32 without it)")
    launch_us: float = Field(default=8.0, ge=0, le=1e4,
                             description="floor per kernel: PyTorch eager dispatch and launch (assumption)")
    gemm_efficiency: float = Field(default=0.7, gt=0, le=1,
                                   description="cuBLAS batched GEMM's attained fraction of peak (assumption)")
    memory_efficiency: float = Field(default=0.8, gt=0, le=1,
                                     description="elementwise kernels' attained fraction of HBM bandwidth")
    gemm_tile: int = Field(default=128, ge=16, le=1024, description="output tile of one GEMM thread block")


class MeasuredFit(_Strict):
    """One fit of a GPU model's terms to measurements: the fitted values and the model's relative error."""

    values: dict[str, float]
    rms_error: float = Field(ge=0)
    max_error: float = Field(ge=0)
    runs: int = Field(ge=1)


class GpuMeasurement(_Strict):
    """Where a measured GPU model's terms come from (``benchmarks/measure_gpu_attention.py`` on the device)."""

    device: str
    driver: str | None = None
    torch: str | None = None
    measurements: str = Field(description="the measurement file the terms were fitted to")
    base: str = Field(description="the assumed (datasheet) model the measured terms replace terms of")
    fits: dict[str, MeasuredFit]


class GpuArch(_Strict):
    """A GPU running dense attention: a FlashAttention-class kernel (``kernel: flash``, roofline with thread-block
    waves and a launch per layer) or eager PyTorch attention (``kernel: eager``); energy as board power
    (``energy: board``: idle + dynamic while busy, what nvidia-smi reads), dynamic power only (``dynamic``:
    board - idle, SOFA's measurement) or the board limit for the whole run (``tdp``)."""

    kind: Literal["gpu"] = "gpu"
    name: str
    description: str = ""
    source: str = ""
    peak_tflops: dict[str, Annotated[float, Field(gt=0, le=1e6)]] = Field(
        description="dense peak by dtype (bf16, fp16, int8, fp32 ...), TFLOP/s")
    hbm_gbps: float = Field(gt=0, le=1e5)
    compute_efficiency: float = Field(gt=0, le=1, description="attained fraction of peak on attention")
    memory_efficiency: float = Field(default=0.9, gt=0, le=1)
    board_power_w: float = Field(gt=0, le=1e5, description="board power limit (TDP)")
    busy_power_w: float | None = Field(default=None, gt=0, le=1e5, description=(
        "board power of a kernel that keeps every SM busy; unset: the board limit (an assumption until measured)"))
    idle_power_w: float = Field(default=0.0, ge=0, le=1e5, description="board power when idle (nvidia-smi)")
    power_scaling: Literal["occupancy", "busy"] = Field(default="occupancy", description=(
        "dynamic power of a kernel: in proportion to the SMs it keeps busy ('occupancy'), or the full busy power "
        "whatever its occupancy ('busy': a board that clocks up for any kernel)"))
    energy: Literal["board", "dynamic", "tdp"] = Field(
        default="board", description="what the energy counts: idle + dynamic, dynamic only, or TDP x time")
    launch_overhead_us: float = Field(default=0.0, ge=0, le=1e6, description="per kernel launch (flash kernel)")
    sms: int = Field(default=1, ge=1, le=10**5, description="streaming multiprocessors (thread-block waves)")
    flash_block_q: int = Field(default=128, ge=1, le=4096, description="query rows per FlashAttention block")
    kernel: Literal["flash", "eager"] = Field(default="flash", description="attention implementation")
    eager: EagerAttention = EagerAttention()
    node_nm: float = Field(ge=1, le=1000)
    die_area_mm2: float = Field(gt=0, le=1e5)
    clock_mhz: float = Field(gt=0, le=1e4)
    measured: GpuMeasurement | None = Field(default=None, description="set when terms were fitted on the device")

    @property
    def busy_w(self) -> float:
        """Board power of a fully busy GPU: measured when fitted, else the board limit."""
        return self.board_power_w if self.busy_power_w is None else self.busy_power_w

    @model_validator(mode="after")
    def _power(self) -> GpuArch:
        if self.idle_power_w >= self.board_power_w:
            raise ValueError(f"idle_power_w ({self.idle_power_w}) must be below board_power_w ({self.board_power_w})")
        if self.busy_power_w is not None and not self.idle_power_w < self.busy_power_w <= self.board_power_w * 1.05:
            raise ValueError(f"busy_power_w ({self.busy_power_w}) must lie between idle_power_w ({self.idle_power_w}) "
                             f"and the board limit ({self.board_power_w}, 5% measurement slack)")
        if self.eager.matmul_dtype not in self.peak_tflops:
            raise ValueError(f"eager.matmul_dtype {self.eager.matmul_dtype!r} has no peak in peak_tflops "
                             f"({sorted(self.peak_tflops)})")
        return self


def arch_names() -> list[str]:
    """Architectures bundled in ``configs/`` (every YAML file but the technology table)."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml") if p.stem != "technology")


def load_arch(name_or_path: str | Path) -> Any:
    """A bundled architecture by name (``"pade"``) or any YAML file by path, validated by the schema of its
    ``kind`` (:func:`~sparseattn.hw.registry.arch_kind`). Architectures are immutable, so a file is parsed once
    until it changes."""
    spatial = CONFIG_DIR.parent / "spatial" / "configs"  # bundled meshes (Spatial-STAR) by name too
    if Path(name_or_path).suffix not in (".yaml", ".yml") and (spatial / f"{name_or_path}.yaml").is_file():
        path = spatial / f"{name_or_path}.yaml"
    else:
        meshes = sorted(p.stem for p in spatial.glob("*.yaml"))
        path = find_file(name_or_path, CONFIG_DIR, ".yaml", "architecture", arch_names() + meshes)
    stat = path.stat()
    return _load_arch(path, stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=128)
def _load_arch(path: Path, mtime_ns: int, size: int) -> Any:
    from .registry import arch_kind

    data = read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return validated(arch_kind(data.get("kind"), where=f"{path}: kind").schema, data, str(path))
