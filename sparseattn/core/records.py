"""Typed records: the method-specific content of a trace that a hardware model reads (DESIGN.md, "The trace").

A :class:`~sparseattn.core.workload.Workload` carries, besides its counts, profile, extra reads and samples, a
small set of **records** -- declared, versioned types, one per kind, each written by one method and read by name
of its type in ``hw``:

=========================  ===============  ==========================================  ============================
record                     kind             written by                                  read by
=========================  ===============  ==========================================  ============================
:class:`SufaCounts`        ``sufa_counts``  SOFA/STAR (SU-FA, SOFA section IV-C)       ``hw/complexity.py``
:class:`SadsSetting`       ``sads_setting`` SOFA/STAR (SADS, SOFA section IV-B)        ``hw/spatial/baselines.py``
:class:`RassLoads`         ``rass_loads``   SOFA/STAR (RASS, SOFA section V-B)         benchmarks and reports
:class:`BitplaneReads`     ``bitplane_reads`` PADE (bit-plane fetch, PADE section V-B)  ``hw/bitplanes.py``
=========================  ===============  ==========================================  ============================

A model asks with :meth:`Workload.record(SufaCounts) <sparseattn.core.workload.Workload.record>`; a trace without
the record is a :class:`MissingRecordError` naming the record, the trace's method and who asked -- never a default.
The free ``meta`` dict that remains holds notes for people (method name, parameters as given, where a trace was
captured); no model reads a number from it.

Every field is declared (pydantic, ``extra="forbid"``): a typo'd counter is an error where it is written and where
it is read back from a file. Records combine by their declared rules when workloads stack
(:meth:`Record.stack`): **counts** add, **structural** fields (widths, group sizes) must agree, **per-layer**
fields (lists, one entry per stacked layer) concatenate when layers stack and must agree when heads do. Records
are measured quantities: :meth:`~sparseattn.core.workload.Workload.scaled_to` carries them unchanged and records the
shape they were measured on (``Workload.source_shape``).
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import InvalidInputError

R = TypeVar("R", bound="Record")
Count = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Width = Annotated[int, Field(ge=1, le=64)]


class MissingRecordError(InvalidInputError):
    """A hardware model asked a trace for a record it does not carry."""


class RecordError(InvalidInputError):
    """A record is malformed, of an unknown kind or version, or cannot be combined with another."""


class Record(BaseModel):
    """Base of the trace's records: ``KIND`` names it in the trace file, ``VERSION`` is its schema version,
    ``STRUCTURAL`` lists the fields that must agree when records combine, ``PER_LAYER`` the list fields that hold
    one entry per stacked layer; every other field is a count (or a nested record of counts) and adds."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    KIND: ClassVar[str] = ""
    VERSION: ClassVar[int] = 1
    STRUCTURAL: ClassVar[tuple[str, ...]] = ()
    PER_LAYER: ClassVar[tuple[str, ...]] = ()

    def stack(self: R, other: R, layers: bool = True) -> R:
        """``self`` and ``other`` combined: counts added, structural fields checked equal, per-layer lists
        concatenated (``layers=True``: stacked layers) or checked equal (``layers=False``: more heads)."""
        if type(other) is not type(self):
            raise RecordError(f"cannot combine a {type(self).__name__} record with a {type(other).__name__}")
        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            a, b = getattr(self, name), getattr(other, name)
            if name in self.STRUCTURAL or (name in self.PER_LAYER and not layers):
                if a != b:
                    raise RecordError(f"cannot combine {self.KIND} records whose {name} differ ({a!r} and {b!r})")
                out[name] = a
            elif name in self.PER_LAYER:
                out[name] = [*a, *b]
            elif isinstance(a, Record):
                out[name] = a.stack(b, layers)
            else:
                out[name] = a + b
        return type(self)(**out)

    def to_json(self) -> dict[str, Any]:
        return {"version": self.VERSION, **self.model_dump()}


class SufaOrder(Record):
    """Softmax and PV operation counts of one SU-FA visiting order (SOFA section IV-C)."""

    KIND: ClassVar[str] = "sufa_order"
    exp: Count
    add: Count
    mul: Count
    compare: Count
    div: Count
    pv_mac: Count
    updates: Count  # running-max updates that forced a rescale
    violations: Count  # descending only: elements above their tile reference
    rescales: Count  # descending only: max-update rescales (included in exp and mul)


class SufaCounts(Record):
    """SU-FA's formal-stage counts in its three visiting orders (descending, ascending and FlashAttention-2's key
    order), at the operand width ``bits`` the formal stage is costed at (SOFA section IV-C, Fig. 17)."""

    KIND: ClassVar[str] = "sufa_counts"
    STRUCTURAL: ClassVar[tuple[str, ...]] = ("bits",)
    bits: Width
    descending: SufaOrder
    ascending: SufaOrder
    fa2: SufaOrder

    def order(self, name: str) -> SufaOrder:
        """The counts of visiting order ``name`` (``descending``, ``ascending`` or ``fa2``)."""
        if name not in ("descending", "ascending", "fa2"):
            raise RecordError(f"unknown SU-FA visiting order {name!r}; expected descending, ascending or fa2")
        return getattr(self, name)


class SadsSetting(Record):
    """SADS's setting of each stacked layer (SOFA section IV-B): keep fraction ``k`` per sub-segment, ``tc``
    sub-segments of ``bc`` keys per row, sphere radius ``r`` (``inf``: off)."""

    KIND: ClassVar[str] = "sads_setting"
    PER_LAYER: ClassVar[tuple[str, ...]] = ("k", "tc", "bc", "r")
    k: list[Annotated[float, Field(gt=0, le=1)]] = Field(min_length=1)
    tc: list[Annotated[int, Field(ge=1)]] = Field(min_length=1)
    bc: list[Annotated[int, Field(ge=1)]] = Field(min_length=1)
    r: list[Annotated[float, Field(gt=0)]] = Field(min_length=1)

    def uniform(self, name: str, needed_by: str) -> float:
        """The one value of per-layer field ``name`` over the stacked layers, or a clear error when they differ."""
        values = getattr(self, name)
        if len(set(values)) != 1:
            raise RecordError(f"{needed_by} needs one SADS {name} for the whole trace; its layers use {values}")
        return values[0]


class RassLoads(Record):
    """RASS's K/V loads (SOFA section V-B): loads without reuse, with RASS's schedule, and distinct keys."""

    KIND: ClassVar[str] = "rass_loads"
    naive_loads: Count
    rass_loads: Count
    unique_keys: Count


class BitplaneReads(Record):
    """PADE's bit-plane fetch counts (PADE sections V-B, V-E), from which ``hw/bitplanes.py`` derives per-key read
    rates at any shape: plane rounds and survivors per (row, key) -- one query row alone -- and K planes and V rows
    per (group, key) -- ``parallel_rows`` rows of every query head of a KV group (``group_heads``) sharing each
    fetch -- and the keys that survive for some row of their KV head out of the keys some row sees."""

    KIND: ClassVar[str] = "bitplane_reads"
    STRUCTURAL: ClassVar[tuple[str, ...]] = ("parallel_rows", "group_heads", "bits")
    parallel_rows: Annotated[int, Field(ge=1)]
    group_heads: Annotated[int, Field(ge=1)]
    bits: Width
    valid_pairs: Count
    plane_rounds: Count
    survivors: Count
    group_keys: Count
    k_planes: Count
    v_reads: Count
    union_keys: Count
    seen_keys: Count


RECORD_TYPES: dict[str, type[Record]] = {t.KIND: t for t in (SufaCounts, SadsSetting, RassLoads, BitplaneReads)}


def record_from_json(kind: str, data: Any) -> Record:
    """A record of ``kind`` from its JSON (``{"version": ..., fields}``); unknown kinds, other versions and
    malformed fields are a :class:`RecordError` naming the kind (and the field)."""
    cls = RECORD_TYPES.get(kind)
    if cls is None:
        raise RecordError(f"unknown record kind {kind!r}; known: {', '.join(RECORD_TYPES)}")
    if not isinstance(data, dict):
        raise RecordError(f"record {kind!r} must be a JSON object, got {type(data).__name__}")
    fields = dict(data)
    version = fields.pop("version", None)
    if version != cls.VERSION:
        raise RecordError(f"record {kind!r} has version {version!r}; this version reads {cls.VERSION}")
    try:
        return cls.model_validate(fields)
    except ValidationError as err:
        where = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        raise RecordError(f"record {kind!r} is malformed: {where}") from None

