"""The trace: what work a method actually did on one input (DESIGN.md, "Traces count, they don't estimate").

A :class:`Workload` is the only thing that passes from ``methods/`` to ``hw/``. It holds

* ``shape`` -- the :class:`~sparseattn.core.shape.Shape` it was measured on;
* ``ops`` -- operation counts keyed by :class:`OpKey` ``(stage, op, bits)``, each with a scaling basis
  (:class:`Per`) that says how the count grows with the shape, so :meth:`Workload.scaled_to` can carry it
  to a bigger model;
* ``profile`` -- the sparsity profile: kept (query, key) pairs per (query tile, key tile) at a base tile
  (default 16) for every attention instance (layer x batch x head), from which a hardware model derives the
  memory traffic of any coarser tiling;
* ``extra_reads`` -- bytes a method implies beyond Q, K, V and O (bit planes, re-fetches, ...), each with a
  scaling basis in ``read_basis`` (default: key-dim, i.e. bytes of a K-sized tensor);
* ``samples`` -- per-row statistics a hardware *timing* model needs beyond counts, as small integer arrays (PADE's
  planes fetched per (query row, key) for a sample of rows, from which ``hw`` derives lane utilisation); they are
  samples of behaviour, not totals, so scaling keeps them and stacking layers concatenates their rows;
* ``records`` -- the method-specific content a hardware model reads, as declared, versioned types (SU-FA's counts,
  SADS's setting, RASS's loads, PADE's bit-plane reads; :mod:`sparseattn.core.records`), asked for by type
  (:meth:`Workload.record`), never by key;
* ``source_shape`` -- after scaling, the shape the counts, samples and records were measured on;
* ``meta`` -- notes for people: method name, parameters as given, where the trace was captured. No model reads a
  number from it.

Vocabulary. Stages: ``quantize``, ``predict``, ``select``, ``kvgen`` (on-demand K/V projection), ``qk``,
``softmax``, ``pv`` (formal compute is ``qk`` + ``softmax`` + ``pv``), ``other``. Ops: ``mac``, ``mul``,
``add``, ``shift``, ``compare``, ``exp``, ``div``, ``lzc`` (leading-zero count), ``load``. ``bits`` is the
operand width the method used.
"""

from __future__ import annotations

import base64
import json
import math
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from .files import write_atomic
from .records import MissingRecordError, R, Record
from .shape import Shape
from .trace_file import FORMAT_VERSION, TraceFormatError, parse_trace

BASE_TILE = 16
STAGES = ("quantize", "predict", "select", "kvgen", "qk", "softmax", "pv", "other")
OPS = ("mac", "mul", "add", "shift", "compare", "exp", "div", "lzc", "load")
KEPT_STAGES = ("qk", "softmax", "pv")  # the formal computation: its per-pair work is work on kept pairs


class OpKey(NamedTuple):
    """One kind of operation: pipeline stage, operation and operand width in bits."""

    stage: str
    op: str
    bits: int


class Per(str, Enum):
    """How an operation count scales with the shape (used by :meth:`Workload.scaled_to`).

    ``pair`` counts grow with the number of valid (query, key) pairs -- for work on kept pairs this assumes the
    density stays the same; ``*_dim`` counts also grow with ``head_dim``; ``row`` with query rows; ``key`` with
    keys per KV head; ``pair_log`` with pairs x log2(k_len) (sorting networks); ``fixed`` does not scale.
    """

    PAIR = "pair"
    PAIR_DIM = "pair_dim"
    ROW = "row"
    ROW_DIM = "row_dim"
    KEY = "key"
    KEY_DIM = "key_dim"
    PAIR_LOG = "pair_log"
    FIXED = "fixed"


PAIR_BASES = (Per.PAIR, Per.PAIR_DIM, Per.PAIR_LOG)


def is_kept_work(stage: str, per: Per | str) -> bool:
    """The one rule for "work on kept pairs": a formal-stage count (``qk``, ``softmax``, ``pv``) that scales with
    pairs. It moves with the kept density (:func:`~sparseattn.hw.traces.with_density`) and is spread over query
    tiles by their kept pairs in the simulator; everything else (prediction and selection scan every valid pair,
    per-row work) does not."""
    return stage in KEPT_STAGES and Per(per) in PAIR_BASES


def _basis(shape: Shape, per: Per) -> float:
    kv_instances = shape.layers * shape.batch * shape.kv_heads
    return {
        Per.PAIR: shape.valid_pairs,
        Per.PAIR_DIM: shape.valid_pairs * shape.head_dim,
        Per.ROW: shape.rows,
        Per.ROW_DIM: shape.rows * shape.head_dim,
        Per.KEY: kv_instances * shape.k_len,
        Per.KEY_DIM: kv_instances * shape.k_len * shape.head_dim,
        Per.PAIR_LOG: shape.valid_pairs * max(1.0, math.log2(shape.k_len)),
        Per.FIXED: 1.0,
    }[per]


def tiles(n: int, tile: int) -> int:
    """Number of tiles of size ``tile`` that cover ``n`` positions."""
    return -(-n // tile)


def tile_valid_counts(shape: Shape, tile: int = BASE_TILE) -> np.ndarray:
    """Valid pairs of one instance per (query tile, key tile), int64 ``[Tq, Tk]``."""
    return _tile_sum(shape.valid_mask()[None], tile)[0]


def _tile_sum(mask: torch.Tensor, tile: int) -> np.ndarray:
    """Sum a boolean ``[n, Nq, Nk]`` mask over ``tile x tile`` tiles (zero padding), int64 ``[n, Tq, Tk]``."""
    n, nq, nk = mask.shape
    tq, tk = tiles(nq, tile), tiles(nk, tile)
    if (nq, nk) == (tq * tile, tk * tile):
        padded = mask.contiguous().view(torch.uint8)
    else:
        padded = torch.zeros(n, tq * tile, tk * tile, dtype=torch.uint8, device=mask.device)
        padded[:, :nq, :nk] = mask
    # two narrow reductions are several times faster than one wide one on CPU
    summed = padded.view(n, tq, tile, tk, tile).sum(dim=4, dtype=torch.int16).sum(dim=2, dtype=torch.int32)
    return summed.cpu().numpy().astype(np.int64)


@dataclass
class SparsityProfile:
    """Kept pairs per (query tile, key tile) for each attention instance.

    ``counts[i, a, c]`` is the number of kept pairs of instance ``i`` between query rows
    ``a*tile .. (a+1)*tile-1`` and key columns ``c*tile .. (c+1)*tile-1``. Instances are ordered
    layer-major, then batch, then head; ``group[i]`` identifies the KV head an instance reads (instances of one
    GQA group share it), unique across layers and batch entries.
    """

    tile: int
    counts: np.ndarray  # int64 [instances, Tq, Tk]
    group: np.ndarray  # int64 [instances]

    @classmethod
    def from_keep(cls, keep: torch.Tensor, shape: Shape, tile: int = BASE_TILE) -> SparsityProfile:
        """Build from a boolean keep mask ``[B, H, Nq, Nk]`` (or anything that broadcasts to it)."""
        b, h = shape.batch, shape.heads
        full = keep.expand(b, h, shape.q_len, shape.k_len)
        if keep.dim() == 4 and keep.shape[0] == 1 and keep.shape[1] == 1 and (b * h) > 1:
            counts = np.broadcast_to(_tile_sum(keep[0], tile), (b * h, *_grid(shape, tile))).copy()
        else:
            counts = _tile_sum(full.reshape(b * h, shape.q_len, shape.k_len), tile)
        return cls(tile=tile, counts=counts, group=_groups(shape))

    def coarsen(self, tile_q: int, tile_k: int | None = None) -> np.ndarray:
        """Kept pairs per coarser tile ``[instances, ceil(Tq*tile/tile_q), ceil(Tk*tile/tile_k)]``.

        Both tile sizes must be multiples of the base tile.
        """
        tile_k = tile_q if tile_k is None else tile_k
        for name, t in (("tile_q", tile_q), ("tile_k", tile_k)):
            if t < self.tile or t % self.tile:
                raise ValueError(f"{name} must be a positive multiple of the base tile {self.tile}, got {t}")
        fq, fk = tile_q // self.tile, tile_k // self.tile
        n, tq, tk = self.counts.shape
        pq, pk = tiles(tq, fq) * fq, tiles(tk, fk) * fk
        padded = np.zeros((n, pq, pk), dtype=np.int64)
        padded[:, :tq, :tk] = self.counts
        return padded.reshape(n, pq // fq, fq, pk // fk, fk).sum(axis=(2, 4))

    @property
    def kept_pairs(self) -> int:
        return int(self.counts.sum())

    def to_json(self) -> dict[str, Any]:
        return {
            "tile": self.tile,
            "shape": list(self.counts.shape),
            "counts_zlib_b64": _pack(self.counts.astype(np.int32)),
            "group": self.group.tolist(),
        }



def _grid(shape: Shape, tile: int) -> tuple[int, int]:
    return tiles(shape.q_len, tile), tiles(shape.k_len, tile)


def _groups(shape: Shape) -> np.ndarray:
    """KV-group id of each instance (layer-major, then batch, then head)."""
    idx = np.arange(shape.instances)
    head = idx % shape.heads
    outer = idx // shape.heads  # layer * batch + batch entry
    return outer * shape.kv_heads + head // shape.group_size


def _pack(a: np.ndarray) -> str:
    return base64.b64encode(zlib.compress(np.ascontiguousarray(a).tobytes(), 6)).decode("ascii")


@dataclass
class Workload:
    """The trace of one attention computation (or a stack of identical layers); see the module docstring."""

    shape: Shape
    terms: dict[tuple[OpKey, Per], float] = field(default_factory=dict)  # counts by (operation, scaling basis)
    profile: SparsityProfile | None = None
    extra_reads: dict[str, float] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    read_basis: dict[str, Per] = field(default_factory=dict)  # scaling basis of each extra read (default KEY_DIM)
    samples: dict[str, np.ndarray] = field(default_factory=dict)  # per-row samples for timing models (2-D arrays)
    records: dict[str, Record] = field(default_factory=dict)  # typed method records by kind (core/records.py)
    source_shape: Shape | None = None  # after scaled_to: the shape the counts were measured on

    # ----------------------------------------------------------------------------------------- building
    def add(self, stage: str, op: str, bits: int, count: float, per: Per | str = Per.PAIR) -> Workload:
        """Add ``count`` operations ``(stage, op, bits)`` that scale by ``per``; returns ``self``."""
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}; expected one of {STAGES}")
        if op not in OPS:
            raise ValueError(f"unknown op {op!r}; expected one of {OPS}")
        if not isinstance(bits, int) or not 1 <= bits <= 64:
            raise ValueError(f"bits must be an int in 1..64, got {bits!r}")
        count = float(count)
        if not math.isfinite(count) or count < 0:
            raise ValueError(f"operation count must be finite and >= 0, got {count}")
        term = (OpKey(stage, op, bits), Per(per))
        self.terms[term] = self.terms.get(term, 0.0) + count
        return self

    def add_read(self, name: str, nbytes: float, per: Per | str = Per.KEY_DIM) -> Workload:
        """Add ``nbytes`` of an extra read ``name`` that scales by ``per``; returns ``self``."""
        nbytes = float(nbytes)
        if not math.isfinite(nbytes) or nbytes < 0:
            raise ValueError(f"extra read {name!r} must be finite and >= 0 bytes, got {nbytes}")
        per = Per(per)
        if self.read_basis.get(name, per) != per:
            raise ValueError(f"extra read {name!r} already scales by {self.read_basis[name].value}, not {per.value}")
        self.extra_reads[name] = self.extra_reads.get(name, 0.0) + nbytes
        self.read_basis[name] = per
        return self

    def add_sample(self, name: str, rows: np.ndarray) -> Workload:
        """Append ``rows`` (a 2-D array of small non-negative integers) to the sample ``name``; returns ``self``."""
        rows = np.asarray(rows)
        if rows.ndim != 2 or rows.dtype.kind not in "iu" or (rows.size and int(rows.min()) < 0):
            raise ValueError(f"sample {name!r} must be a 2-D array of non-negative integers, got {rows.dtype} "
                             f"of shape {rows.shape}")
        rows = rows.astype(np.uint8 if rows.size == 0 or rows.max() < 256 else np.int32)
        old = self.samples.get(name)
        self.samples[name] = rows if old is None else _stack_rows(old, rows)
        return self

    def put(self, record: Record) -> Workload:
        """Attach ``record`` (one per kind; a second of the same kind is refused); returns ``self``."""
        if not isinstance(record, Record):
            raise TypeError(f"put() takes a typed record (sparseattn.core.records), got {type(record).__name__}")
        if record.KIND in self.records:
            raise ValueError(f"this trace already carries a {record.KIND!r} record")
        self.records[record.KIND] = record
        return self

    def record(self, kind: type[R], needed_by: str = "a hardware model") -> R:
        """The trace's record of type ``kind``, or a :class:`~sparseattn.core.records.MissingRecordError` naming
        it, the trace's method and ``needed_by`` -- never a default."""
        found = self.records.get(kind.KIND)
        if found is None:
            raise MissingRecordError(
                f"{needed_by} needs the {kind.__name__} record ({kind.KIND!r}), which this "
                f"{self.meta.get('method', 'unnamed')!r} trace does not carry (it has: "
                f"{', '.join(sorted(self.records)) or 'no records'}); capture the trace with the method that "
                f"writes it, at this version")
        if not isinstance(found, kind):
            raise MissingRecordError(f"the trace's {kind.KIND!r} record is a {type(found).__name__}, not a "
                                     f"{kind.__name__}")
        return found

    def has(self, kind: type[Record]) -> bool:
        return kind.KIND in self.records

    @property
    def measured_shape(self) -> Shape:
        """The shape the counts, samples and records were measured on (the source of a scaled trace)."""
        return self.source_shape or self.shape

    def basis_of_read(self, name: str) -> Per:
        """How the extra read ``name`` scales with the shape (key-dim unless the method said otherwise)."""
        return self.read_basis.get(name, Per.KEY_DIM)

    def drop(self, stage: str, op: str, bits: int) -> float:
        """Remove every count of ``(stage, op, bits)``; returns what was removed."""
        key = OpKey(stage, op, bits)
        gone = [t for t in self.terms if t[0] == key]
        return sum(self.terms.pop(t) for t in gone)

    # ----------------------------------------------------------------------------------------- queries
    @property
    def ops(self) -> dict[OpKey, float]:
        """Counts by operation, summed over scaling bases (a new dict)."""
        out: dict[OpKey, float] = {}
        for (key, _), c in self.terms.items():
            out[key] = out.get(key, 0.0) + c
        return out

    def count(self, stage: str | None = None, op: str | None = None, bits: int | None = None) -> float:
        """Sum of the counts that match the given stage / op / bits (``None`` matches anything)."""
        return sum(
            c
            for k, c in self.ops.items()
            if (stage is None or k.stage == stage) and (op is None or k.op == op) and (bits is None or k.bits == bits)
        )

    @property
    def kept_pairs(self) -> int:
        if self.profile is None:
            raise ValueError("this workload has no sparsity profile")
        return self.profile.kept_pairs

    @property
    def density(self) -> float:
        """Kept pairs / valid pairs over every instance."""
        return self.kept_pairs / self.shape.valid_pairs

    # ----------------------------------------------------------------------------------------- merging
    def __add__(self, other: Workload) -> Workload:
        """Stack two workloads of the same per-layer shape as more layers (counts add, profiles concatenate)."""
        if not isinstance(other, Workload):
            return NotImplemented
        a, b = self.shape, other.shape
        if a.replace(layers=1) != b.replace(layers=1):
            raise ValueError(
                f"can only stack workloads of the same per-layer shape; got {a.replace(layers=1)} and "
                f"{b.replace(layers=1)} (use Workload.concat_heads to merge heads)"
            )
        return _merge(self, other, a.replace(layers=a.layers + b.layers), layers=True)

    def __radd__(self, other: object) -> Workload:
        if other == 0:  # lets sum(workloads) work
            return self
        return NotImplemented  # type: ignore[return-value]

    @staticmethod
    def concat_heads(first: Workload, second: Workload) -> Workload:
        """Merge two workloads that cover different heads of the same layers and sequences."""
        a, b = first.shape, second.shape
        if a.replace(heads=1, kv_heads=1) != b.replace(heads=1, kv_heads=1) or a.layers != 1:
            raise ValueError(f"concat_heads needs single-layer workloads equal but for heads; got {a} and {b}")
        if a.group_size != b.group_size:
            raise ValueError(f"concat_heads needs the same GQA group size, got {a.group_size} and {b.group_size}")
        if first.profile is not None and a.batch > 1:
            raise ValueError("concat_heads of profiled workloads supports batch 1 only")
        return _merge(first, second, a.replace(heads=a.heads + b.heads, kv_heads=a.kv_heads + b.kv_heads),
                      layers=False)

    # ----------------------------------------------------------------------------------------- scaling
    def scaled_to(self, shape: Shape, with_profile: bool = True) -> Workload:
        """This workload carried to another shape, assuming the same density and sparsity pattern.

        * each op count is multiplied by ``basis(new) / basis(old)`` for its :class:`Per`;
        * the profile is resampled: instance ``j`` of the new shape takes the per-tile *density* of instance
          ``j mod n_old`` at the nearest tile in normalised (query, key) coordinates (clamped to that row's
          last valid key tile when causal), times the new tile's valid pairs;
        * ``extra_reads`` scale by their own basis (:meth:`basis_of_read`; key-dim unless stated);
        * samples and records are measurements: they are kept as measured, and ``source_shape`` records the shape
          they were measured on (``meta["scaling"]`` states the rule).

        ``with_profile=False`` skips resampling the profile (the result has none): hardware models that project
        the source profile onto their own tiling need only the counts.
        """
        if shape.causal != self.shape.causal:
            raise ValueError("scaled_to cannot change whether attention is causal")
        out = Workload(shape=shape, extra_reads={}, meta=dict(self.meta))
        out.terms = {
            (key, per): c * _basis(shape, per) / _basis(self.shape, per) for (key, per), c in self.terms.items()
        }
        out.extra_reads = {
            k: v * _basis(shape, self.basis_of_read(k)) / _basis(self.shape, self.basis_of_read(k))
            for k, v in self.extra_reads.items()
        }
        out.read_basis = dict(self.read_basis)
        out.samples = dict(self.samples)
        out.records = dict(self.records)
        out.source_shape = self.measured_shape
        if self.profile is not None and with_profile:
            out.profile = _resample_profile(self.profile, self.shape, shape)
        out.meta["scaling"] = (
            "op counts x basis ratio (pairs, rows, keys, head_dim); sparsity profile resampled by per-tile "
            "density (same density assumed)"
        )
        return out

    # ----------------------------------------------------------------------------------------- JSON
    def to_json(self) -> dict[str, Any]:
        """The trace file (format :data:`~sparseattn.core.trace_file.FORMAT_VERSION`)."""
        return {
            "format_version": FORMAT_VERSION,
            "shape": self.shape.to_dict(),
            "ops": [
                {"stage": k.stage, "op": k.op, "bits": k.bits, "count": c, "per": per.value}
                for (k, per), c in sorted(self.terms.items(), key=lambda t: (t[0][0], t[0][1].value))
            ],
            "profile": None if self.profile is None else self.profile.to_json(),
            "extra_reads": dict(self.extra_reads),
            "read_basis": {k: self.basis_of_read(k).value for k in self.extra_reads},
            "samples": {k: _pack_array(v) for k, v in self.samples.items()},
            "records": {kind: r.to_json() for kind, r in sorted(self.records.items())},
            "scaled_from": None if self.source_shape is None else self.source_shape.to_dict(),
            "meta": _jsonable(self.meta),
        }

    @classmethod
    def from_json(cls, data: Any, source: str = "<trace>", upgrade: bool = False) -> Workload:
        """Build from trace JSON, validated first (:func:`~sparseattn.core.trace_file.parse_trace`): a malformed
        trace raises :class:`~sparseattn.core.trace_file.TraceFormatError` naming ``source`` and the key path."""
        record = parse_trace(data, source, upgrade)
        w = cls(shape=Shape(**record.shape.model_dump()))
        for row in record.ops:
            w.add(row.stage, row.op, row.bits, row.count, row.per)
        if record.profile is not None:
            p = record.profile
            w.profile = SparsityProfile(tile=p.tile, counts=p.counts(), group=np.asarray(p.group, dtype=np.int64))
        for name, nbytes in record.extra_reads.items():
            w.add_read(name, nbytes, record.read_basis[name])
        w.samples = {name: s.array(name) for name, s in record.samples.items()}
        w.records = record.typed_records()
        if record.scaled_from is not None:
            w.source_shape = Shape(**record.scaled_from.model_dump())
        w.meta = dict(record.meta)
        return w

    def save(self, path: str | Path) -> None:
        """Write the trace file atomically (a temporary file renamed into place)."""
        write_atomic(Path(path), json.dumps(self.to_json()))

    @classmethod
    def load(cls, path: str | Path, upgrade: bool = False) -> Workload:
        """Read and validate a trace file; errors name the file (and the key path)."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise TraceFormatError(f"trace file {str(path)!r} does not exist") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise TraceFormatError(f"{path}: not valid JSON ({err})") from None
        return cls.from_json(data, str(path), upgrade)

    def summary(self) -> dict[str, float]:
        """Op counts as a flat ``{"stage/op/bits": count}`` dict, for tables."""
        return {f"{k.stage}/{k.op}/{k.bits}": c for k, c in sorted(self.ops.items())}


def _merge_records(a: Workload, b: Workload, layers: bool) -> dict[str, Record]:
    """The records both workloads carry, combined by their rules (:meth:`~sparseattn.core.records.Record.stack`);
    a record only one of them carries does not cover the result and is dropped (a model asking for it then fails
    clearly)."""
    return {kind: a.records[kind].stack(b.records[kind], layers) for kind in a.records if kind in b.records}


def _merge(a: Workload, b: Workload, shape: Shape, layers: bool) -> Workload:
    if a.source_shape != b.source_shape:
        raise ValueError(f"cannot merge workloads measured on different shapes ({a.source_shape} and "
                         f"{b.source_shape})")
    out = Workload(shape=shape, meta=dict(a.meta), source_shape=a.source_shape)
    out.records = _merge_records(a, b, layers)
    for w in (a, b):
        for (key, per), c in w.terms.items():
            out.add(key.stage, key.op, key.bits, c, per)
        for name, v in w.extra_reads.items():
            out.add_read(name, v, w.basis_of_read(name))
    for w in (a, b):
        for name, rows in w.samples.items():
            out.samples[name] = rows if name not in out.samples else _stack_rows(out.samples[name], rows)
    if (a.profile is None) != (b.profile is None):
        raise ValueError("cannot merge a workload that has a sparsity profile with one that has none")
    if a.profile is not None and b.profile is not None:
        if a.profile.tile != b.profile.tile:
            raise ValueError(f"profiles use different base tiles: {a.profile.tile} and {b.profile.tile}")
        if a.profile.counts.shape[1:] != b.profile.counts.shape[1:]:
            raise ValueError("profiles cover different tile grids")
        # Stacked layers, or (batch 1) a's heads followed by b's: either way instances concatenate in order.
        out.profile = SparsityProfile(
            tile=a.profile.tile,
            counts=np.concatenate([a.profile.counts, b.profile.counts]),
            group=_groups(shape),
        )
    if a.meta.get("method") != b.meta.get("method"):
        out.meta["method"] = "+".join(str(m) for m in (a.meta.get("method"), b.meta.get("method")))
    return out


def _stack_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rows of ``a`` then ``b``, the narrower one zero-padded on the right."""
    width = max(a.shape[1], b.shape[1])
    dtype = np.promote_types(a.dtype, b.dtype)
    pad = [np.pad(x.astype(dtype), ((0, 0), (0, width - x.shape[1]))) for x in (a, b)]
    return np.concatenate(pad)


def _pack_array(a: np.ndarray) -> dict[str, Any]:
    return {"dtype": str(a.dtype), "shape": list(a.shape), "data_zlib_b64": _pack(a)}


def _resample_profile(p: SparsityProfile, old: Shape, new: Shape) -> SparsityProfile:
    valid_old = tile_valid_counts(old, p.tile).astype(np.float64)
    valid_new = tile_valid_counts(new, p.tile)
    tq_o, tk_o = valid_old.shape
    tq_n, tk_n = valid_new.shape
    density = np.divide(p.counts, valid_old[None], out=np.zeros(p.counts.shape), where=valid_old[None] > 0)
    rows = np.minimum((np.arange(tq_n) * tq_o) // tq_n, tq_o - 1)
    cols = np.minimum((np.arange(tk_n) * tk_o) // tk_n, tk_o - 1)
    col_idx = np.broadcast_to(cols[None, :], (tq_n, tk_n)).copy()
    if old.causal:
        last_valid = (valid_old > 0).cumsum(axis=1).argmax(axis=1)  # last key tile with a valid pair, per row
        col_idx = np.minimum(col_idx, last_valid[rows][:, None])
    src = np.arange(new.instances) % p.counts.shape[0]
    d = density[src][:, rows[:, None], col_idx]
    counts = np.rint(d * valid_new[None]).astype(np.int64)
    return SparsityProfile(tile=p.tile, counts=counts, group=_groups(new))


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float | int | str | bool) or value is None:
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Enum):
        return value.value
    return str(value)


def total(workloads: Iterable[Workload]) -> Workload:
    """Stack a sequence of per-layer workloads (``sum`` with a clear error on an empty sequence)."""
    items = list(workloads)
    if not items:
        raise ValueError("total() needs at least one workload")
    return sum(items[1:], items[0])
