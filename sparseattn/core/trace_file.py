"""The trace file format: a versioned, validated JSON schema for :class:`~sparseattn.core.workload.Workload`.

A trace file is what passes from the methods to the hardware models on disk, so a wrong file must never become
a wrong number. Every field is validated before a :class:`Workload` is built (pydantic, strict types: no bool
taken as an int, no string taken as a number), every count is finite and non-negative, every extra read has its
scaling basis, the profile and samples decode to the shapes they declare, and every error names the file and
the key path (``trace.json: shape.heads: Field required``).

Format versions:

* **3** (current, ``"format_version": 3``): the method-specific content a hardware model reads is in ``records``,
  typed and versioned (:mod:`sparseattn.core.records`), and a scaled trace names the shape it was measured on in
  ``scaled_from``; ``meta`` is free-form notes that no model reads a number from.
* **2** (written before 2026-12): the same counts, but the method's records lived in the free ``meta`` dict
  (``meta["sufa"]``, ``meta["bitplane_reads"]``, ``meta["k"]``, ``meta["scaled_from"]``, ...), read by key with
  silent defaults. Version-2 files are refused with a pointer to the upgrade; :func:`parse_trace` with
  ``upgrade=True`` (or ``python scripts/upgrade_traces.py FILE...``) converts one (:func:`upgrade_v2`): counts,
  profile, extra reads and samples are unchanged, and each record is carried over when the version-2 meta holds it
  for the whole trace. A stacked version-2 trace kept only its *first* layer's SU-FA and RASS counts in ``meta``
  (they did not add up), so those records are left out of an upgraded stacked trace -- a model that needs one then
  fails clearly -- and ``meta["upgraded"]`` says what was carried over and what was not.
* **1** (no ``format_version``, written before 2026-11): ``read_basis`` was optional and a missing entry was read
  as key-dim scaling -- which mis-scaled PADE's bit-plane reads by the pair/key ratio. Version-1 files are
  refused; with ``upgrade=True`` one is accepted when every extra read it has carries a basis (the upgrade is then
  lossless), then upgraded from version 2 as above, and still refused when one does not.
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
from .records import BitplaneReads, RassLoads, Record, RecordError, SadsSetting, SufaCounts, record_from_json

FORMAT_VERSION = 3



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
    format_version: Literal[3]
    shape: ShapeRecord
    ops: list[OpRecord] = Field(min_length=1, description="op counts: a trace without any is no work to simulate")
    profile: ProfileRecord | None = None
    extra_reads: dict[str, Count] = Field(default_factory=dict)
    read_basis: dict[str, str] = Field(default_factory=dict)
    samples: dict[str, SampleRecord] = Field(default_factory=dict)
    records: dict[str, dict[str, Any]] = Field(default_factory=dict)
    scaled_from: ShapeRecord | None = None
    meta: dict[str, Any] = Field(default_factory=dict)

    def typed_records(self) -> dict[str, Record]:
        """The records, each validated against its declared type (:func:`~sparseattn.core.records.record_from_json`)."""
        return {kind: record_from_json(kind, data) for kind, data in self.records.items()}

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
        data["format_version"] = 2
        version = 2
    if version == 2 and not isinstance(version, bool):
        if not upgrade:
            raise TraceFormatError(
                f"{source}: trace format 2 is refused: its method records are an untyped meta dict; upgrade it "
                f"with `python scripts/upgrade_traces.py {source}` (or load it with upgrade=True)"
            )
        try:
            data = upgrade_v2(data)
        except RecordError as err:
            raise TraceFormatError(f"{source}: {err}") from None
    elif version != FORMAT_VERSION or isinstance(version, bool):
        raise TraceFormatError(f"{source}: unsupported trace format_version {version!r}; this version reads "
                               f"{FORMAT_VERSION} (and upgrades 2)")
    try:
        record = TraceRecord.model_validate(data)
        if record.profile is not None:
            record.profile.counts()
        for name, sample in record.samples.items():
            sample.array(name)
        record.typed_records()
    except ValidationError as err:
        lines = [f"  {_where(e['loc'])}: {e['msg'].removeprefix('Value error, ')}" + _got(e) for e in err.errors()]
        raise TraceFormatError(f"{source}: invalid trace\n" + "\n".join(lines)) from None
    except (ValueError, RecordError) as err:
        raise TraceFormatError(f"{source}: invalid trace: {err}") from None
    return record


# ---------------------------------------------------------------------------------------- format 2 -> 3
_SUFA_ORDERS = ("descending", "ascending", "fa2")
_MOVED = {"bitplane_reads": ("bitplane_reads",), "sufa": ("sufa",), "rass": ("rass",),
          "Tc": ("k", "Tc", "Bc", "r"), "scaled_from": ("scaled_from",)}  # meta keys a record replaces, by marker


def upgrade_v2(data: Mapping[str, Any]) -> dict[str, Any]:
    """A format-2 trace's JSON as format 3 (see the module docstring): ``meta``'s record entries become typed
    records where they cover the whole trace; nothing else changes. Malformed entries are a
    :class:`~sparseattn.core.records.RecordError`."""
    out = dict(data)
    if "records" in out or "scaled_from" in out:
        raise RecordError("a format-2 trace has no 'records' or 'scaled_from' (format 3 keys): is its "
                          "format_version wrong?")
    meta = dict(out.get("meta") or {})
    layers = (out.get("shape") or {}).get("layers", 1)
    params = meta.get("params") if isinstance(meta.get("params"), Mapping) else {}
    records: dict[str, Record] = {}
    left: list[str] = []
    try:
        if "bitplane_reads" in meta:  # counts that added up over stacked layers in format 2
            records["bitplane_reads"] = BitplaneReads(**meta["bitplane_reads"])
        if "sufa" in meta:
            if layers == 1 and "formal_bits" in params:
                orders = {o: meta["sufa"][o] for o in _SUFA_ORDERS}
                records["sufa_counts"] = SufaCounts(bits=params["formal_bits"], **orders)
            else:
                left.append("sufa_counts (format 2 kept the first stacked layer's only)" if layers > 1
                            else "sufa_counts (no formal_bits in meta.params)")
        if "rass" in meta:
            if layers == 1:
                records["rass_loads"] = RassLoads(**meta["rass"])
            else:
                left.append("rass_loads (format 2 kept the first stacked layer's only)")
        if "Tc" in meta:
            setting = _sads_setting(meta, params, layers)
            if setting is None:
                left.append("sads_setting (per-layer parameters; format 2 kept the first layer's)")
            else:
                records["sads_setting"] = setting
    except (TypeError, KeyError, ValidationError) as err:
        raise RecordError(f"cannot upgrade the format-2 meta to records ({err!s:.300})") from None
    if "scaled_from" in meta:
        out["scaled_from"] = meta["scaled_from"]
    for marker, keys in _MOVED.items():
        if marker in meta:
            for key in keys:
                meta.pop(key, None)
    kept = sorted(records)
    meta["upgraded"] = (f"format 2 -> 3: records {', '.join(kept) or 'none'} from meta"
                        + (f"; not carried: {'; '.join(left)}" if left else ""))
    out.update(format_version=FORMAT_VERSION, meta=meta, records={k: r.to_json() for k, r in records.items()})
    return out


def _sads_setting(meta: Mapping[str, Any], params: Mapping[str, Any], layers: int) -> SadsSetting | None:
    """SADS's per-layer setting from format-2 meta (the first stacked layer's values): every layer's when the
    trace has one layer or its parameters were scalars (then every layer ran the same setting), else ``None``."""
    if layers > 1 and any(isinstance(params.get(name), list) for name in ("k", "Tc", "r")):
        return None
    return SadsSetting(k=[meta["k"]] * layers, tc=[meta["Tc"]] * layers, bc=[meta["Bc"]] * layers,
                       r=[meta["r"]] * layers)
