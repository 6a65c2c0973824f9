"""The trace file format: a versioned, validated JSON schema for :class:`~sparseattn.core.workload.Workload`.

A trace file is what passes from the methods to the hardware models on disk, so a wrong file must never become
a wrong number. Every field is validated before a :class:`Workload` is built (pydantic, strict types: no bool
taken as an int, no string taken as a number), every count is finite and non-negative, every extra read has its
scaling basis, the profile and samples decode to the shapes they declare, and every error names the file and
the key path (``trace.json: shape.heads: Field required``).

Format versions:

* **2** (current, ``"format_version": 2``): every extra read has an entry in ``read_basis``; ``samples`` may hold
  per-row timing samples.
* **1** (no ``format_version``, written before 2026-11): ``read_basis`` was optional and a missing entry was read
  as key-dim scaling -- which mis-scaled PADE's bit-plane reads by the pair/key ratio. Version-1 files are
  refused; :func:`parse_trace` with ``upgrade=True`` accepts one when every extra read it has carries a basis (the
  upgrade is then lossless) and still refuses one that does not.
"""

from __future__ import annotations

import base64
import binascii
import math
import zlib
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import InvalidInputError

FORMAT_VERSION = 2



def _number(v: Any) -> float:
    """A JSON number (int or float, never a bool or a string)."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ValueError(f"must be a number, got {type(v).__name__}")
    if not math.isfinite(v):
        raise ValueError("must be a finite number")
    return float(v)


PositiveInt = Annotated[int, Field(strict=True, ge=1)]
Count = Annotated[float, BeforeValidator(_number), Field(strict=False, ge=0, allow_inf_nan=False)]


class TraceFormatError(InvalidInputError):
    """A trace file is malformed; the message names the file and the key path."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ShapeRecord(_Strict):
    batch: PositiveInt
    heads: PositiveInt
    kv_heads: PositiveInt
    q_len: PositiveInt
    k_len: PositiveInt
    head_dim: PositiveInt
    causal: bool
    layers: PositiveInt = 1
    window: PositiveInt | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ShapeRecord:
        if self.window is not None and not self.causal:
            raise ValueError("a sliding window needs causal attention")
        if self.heads % self.kv_heads:
            raise ValueError(f"heads ({self.heads}) must be a multiple of kv_heads ({self.kv_heads})")
        if self.causal and self.q_len > self.k_len:
            raise ValueError(f"a causal shape needs q_len <= k_len, got {self.q_len} > {self.k_len}")
        return self


class OpRecord(_Strict):
    stage: str
    op: str
    bits: Annotated[int, Field(strict=True, ge=1, le=64)]
    count: Count
    per: str

    @field_validator("stage")
    @classmethod
    def _stage(cls, v: str) -> str:
        from .workload import STAGES

        if v not in STAGES:
            raise ValueError(f"unknown stage {v!r}; expected one of {', '.join(STAGES)}")
        return v

    @field_validator("op")
    @classmethod
    def _op(cls, v: str) -> str:
        from .workload import OPS

        if v not in OPS:
            raise ValueError(f"unknown op {v!r}; expected one of {', '.join(OPS)}")
        return v

    @field_validator("per")
    @classmethod
    def _per(cls, v: str) -> str:
        from .workload import Per

        allowed = [p.value for p in Per]
        if v not in allowed:
            raise ValueError(f"unknown scaling basis {v!r}; expected one of {', '.join(allowed)}")
        return v


def _decode(data: str, dtype: np.dtype, count: int, what: str) -> np.ndarray:
    """``count`` items of ``dtype`` from zlib-compressed base64, or a clear error."""
    try:
        raw = zlib.decompress(base64.b64decode(data, validate=True))
    except (binascii.Error, zlib.error, ValueError) as err:
        raise ValueError(f"{what} is not valid zlib-compressed base64 ({err})") from None
    if len(raw) != count * dtype.itemsize:
        raise ValueError(f"{what} holds {len(raw) // dtype.itemsize} values, its shape says {count}")
    return np.frombuffer(raw, dtype=dtype).copy()


class ProfileRecord(_Strict):
    tile: PositiveInt
    shape: Annotated[list[Annotated[int, Field(strict=True, ge=0)]], Field(min_length=3, max_length=3)]
    counts_zlib_b64: str
    group: list[Annotated[int, Field(strict=True, ge=0)]]

    def counts(self) -> np.ndarray:
        n = math.prod(self.shape)
        a = _decode(self.counts_zlib_b64, np.dtype(np.int32), n, "profile.counts_zlib_b64")
        if n and int(a.min()) < 0:
            raise ValueError("profile counts must be >= 0")
        return a.reshape(self.shape).astype(np.int64)


class SampleRecord(_Strict):
    dtype: Literal["uint8", "int32"]
    shape: Annotated[list[Annotated[int, Field(strict=True, ge=0)]], Field(min_length=2, max_length=2)]
    data_zlib_b64: str

    def array(self, name: str) -> np.ndarray:
        a = _decode(self.data_zlib_b64, np.dtype(self.dtype), math.prod(self.shape), f"samples.{name}")
        return a.reshape(self.shape)


class TraceRecord(_Strict):
    format_version: Literal[2]
    shape: ShapeRecord
    ops: list[OpRecord] = Field(min_length=1, description="op counts: a trace without any is no work to simulate")
    profile: ProfileRecord | None = None
    extra_reads: dict[str, Count] = Field(default_factory=dict)
    read_basis: dict[str, str] = Field(default_factory=dict)
    samples: dict[str, SampleRecord] = Field(default_factory=dict)
    meta: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> TraceRecord:
        from .workload import Per

        missing = sorted(set(self.extra_reads) - set(self.read_basis))
        if missing:
            raise ValueError(f"extra reads {missing} have no read_basis entry (how they scale with the shape)")
        bad = {k: v for k, v in self.read_basis.items() if v not in [p.value for p in Per]}
        if bad:
            raise ValueError(f"read_basis has unknown scaling bases {bad}")
        if self.profile is not None:
            self._check_profile()
        return self

    def _check_profile(self) -> None:
        p, s = self.profile, self.shape
        instances = s.layers * s.batch * s.heads
        grid = [instances, -(-s.q_len // p.tile), -(-s.k_len // p.tile)]
        if p.shape != grid:
            raise ValueError(f"profile.shape {p.shape} does not match the shape's tile grid {grid} "
                             f"(instances, ceil(q_len/tile), ceil(k_len/tile))")
        if len(p.group) != instances:
            raise ValueError(f"profile.group has {len(p.group)} entries for {instances} instances")


def _where(loc: tuple) -> str:
    return ".".join(str(x) for x in loc) or "<top>"


def _got(e: Mapping[str, Any]) -> str:
    return "" if e["type"] == "missing" else f" (got {e.get('input')!r})"[:200]


def parse_trace(data: Any, source: str = "<trace>", upgrade: bool = False) -> TraceRecord:
    """Validate trace JSON ``data`` (from ``source``, named in errors); see the module docstring for versions."""
    if not isinstance(data, Mapping):
        raise TraceFormatError(f"{source}: a trace file holds a JSON object, got {type(data).__name__}")
    data = dict(data)
    version = data.get("format_version", 1)
    if version == 1 and "format_version" not in data:
        if not upgrade:
            raise TraceFormatError(
                f"{source}: trace format 1 (no format_version) is refused: it may lack the scaling basis of its "
                f"extra reads; re-capture it, or load it with upgrade=True (accepted only when every extra read "
                f"has a read_basis entry)"
            )
        data["format_version"] = FORMAT_VERSION
    elif version != FORMAT_VERSION:
        raise TraceFormatError(f"{source}: unsupported trace format_version {version!r}; this version reads "
                               f"{FORMAT_VERSION}")
    try:
        record = TraceRecord.model_validate(data)
        if record.profile is not None:
            record.profile.counts()
        for name, sample in record.samples.items():
            sample.array(name)
    except ValidationError as err:
        lines = [f"  {_where(e['loc'])}: {e['msg'].removeprefix('Value error, ')}" + _got(e) for e in err.errors()]
        raise TraceFormatError(f"{source}: invalid trace\n" + "\n".join(lines)) from None
    except ValueError as err:
        raise TraceFormatError(f"{source}: invalid trace: {err}") from None
    return record
