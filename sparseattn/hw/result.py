"""What a simulation measured: :class:`SimResult`, with its energy and area breakdowns as typed records.

Breakdowns are lists of records, never keys to split apart again: an :class:`EnergyItem` says which component
spent the energy, of which kind (``compute``, ``sram``, ``dram``, ``leakage``; a GPU's ``board`` power), in which
trace stage and action, at which width; an :class:`AreaItem` which component, of which kind (``unit``, ``sram``,
``die``), and whether the figure is published or bottom-up. :meth:`SimResult.energy_by` and
:meth:`SimResult.area_by` group them by any field. Everything serialises (JSON, long-format CSV).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

EnergyKind = Literal["compute", "sram", "dram", "leakage", "board", "noc"]  # noc: a mesh's routers and links
AreaKind = Literal["unit", "sram", "die"]
STATIC_KINDS = ("leakage", "board")  # energy that is power x time, whatever the work


@dataclass(frozen=True)
class EnergyItem:
    """Energy one component spent on one action.

    ``stage`` is the trace stage of a compute action (``None`` for memories and leakage); ``tensor`` the tensor an
    SRAM or DRAM action moved; ``bits`` the operand width of a compute action.
    """

    component: str
    kind: EnergyKind
    action: str
    pj: float
    stage: str | None = None
    tensor: str | None = None
    bits: int | None = None

    @property
    def label(self) -> str:
        """A display label, e.g. ``qk_lanes/qk:add8``, ``dram/read:k``, ``kv/write:fills``."""
        if self.kind == "compute":
            return f"{self.component}/{self.stage}:{self.action}{self.bits}"
        return f"{self.component}/{self.action}" + (f":{self.tensor}" if self.tensor else "")


@dataclass(frozen=True)
class AreaItem:
    """Area of one component; ``basis`` is ``published`` (the paper's module area) or ``model`` (bottom-up)."""

    component: str
    kind: AreaKind
    mm2: float
    basis: Literal["published", "model"] = "model"


def group_by(items: Iterable[Any], key: str | Callable[[Any], Any], value: str) -> dict[Any, float]:
    """Sum ``value`` of ``items`` grouped by a field name or a function of the item (insertion order kept)."""
    get = (lambda it: getattr(it, key)) if isinstance(key, str) else key
    out: dict[Any, float] = {}
    for it in items:
        k = get(it)
        out[k] = out.get(k, 0.0) + getattr(it, value)
    return out


@dataclass
class SimResult:
    """What a simulation measured (see the module docstring).

    ``shape`` is the simulated model shape (as a dict) and ``density`` the kept fraction of its valid pairs;
    ``dense_ops`` the dense-equivalent operations (4 x valid pairs x head_dim); ``fixed_cycles`` the part of
    ``cycles`` paid once per run whatever the work (the first DRAM access, a GPU's launches), which
    :func:`~sparseattn.hw.replicate.split_heads` does not divide.
    """

    arch: str
    kind: str
    method: str
    shape: dict[str, Any]
    density: float
    normalised: str
    clock_mhz: float
    cycles: float
    latency_s: float
    dense_ops: float
    energy: list[EnergyItem] = field(default_factory=list)
    area: list[AreaItem] = field(default_factory=list)
    dram_bytes: dict[str, float] = field(default_factory=dict)
    utilisation: dict[str, float] = field(default_factory=dict)
    stage_cycles: dict[str, float] = field(default_factory=dict)
    compute_bound_fraction: float = 0.0
    fixed_cycles: float = 0.0
    mapping: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    # ------------------------------------------------------------------ totals
    @property
    def energy_j(self) -> float:
        return sum(e.pj for e in self.energy) * 1e-12

    @property
    def power_w(self) -> float:
        return self.energy_j / self.latency_s

    @property
    def total_area_mm2(self) -> float:
        return sum(a.mm2 for a in self.area)

    @property
    def effective_gops(self) -> float:
        """Dense-equivalent throughput (the papers' "effective GOPS": dense ops / time)."""
        return self.dense_ops / self.latency_s / 1e9

    @property
    def gops_per_w(self) -> float:
        return self.dense_ops / self.energy_j / 1e9

    @property
    def gops_per_mm2(self) -> float:
        return self.effective_gops / self.total_area_mm2

    # ------------------------------------------------------------------ breakdowns
    def energy_by(self, key: str | Callable[[EnergyItem], Any] = "component") -> dict[Any, float]:
        """Energy in pJ grouped by an :class:`EnergyItem` field (``component``, ``kind``, ``stage``, ...) or a
        function of the item."""
        return group_by(self.energy, key, "pj")

    def area_by(self, key: str | Callable[[AreaItem], Any] = "component") -> dict[Any, float]:
        """Area in mm^2 grouped by an :class:`AreaItem` field or a function of the item."""
        return group_by(self.area, key, "mm2")

    def on_chip_energy_j(self) -> float:
        """Energy without DRAM (compute, SRAM and leakage)."""
        return sum(e.pj for e in self.energy if e.kind != "dram") * 1e-12

    @property
    def energy_pj(self) -> dict[str, float]:
        """Energy by display label (:attr:`EnergyItem.label`), for printing; group with :meth:`energy_by`."""
        return group_by(self.energy, "label", "pj")

    def summary(self) -> dict[str, float]:
        return {
            "latency_ms": self.latency_s * 1e3,
            "energy_mj": self.energy_j * 1e3,
            "power_w": self.power_w,
            "area_mm2": self.total_area_mm2,
            "effective_gops": self.effective_gops,
            "gops_per_w": self.gops_per_w,
            "gops_per_mm2": self.gops_per_mm2,
            "dram_mb": sum(self.dram_bytes.values()) / 1e6,
        }

    # ------------------------------------------------------------------ serialisation
    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["summary"] = self.summary()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SimResult:
        names = {f.name for f in fields(cls)}
        kw = {k: v for k, v in data.items() if k in names}
        kw["energy"] = [EnergyItem(**e) for e in data.get("energy", [])]
        kw["area"] = [AreaItem(**a) for a in data.get("area", [])]
        return cls(**kw)

    def save_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=2))

    def to_csv(self) -> str:
        """Long format: ``section,key,value`` rows for the summary, every energy and area record (by label) and
        the DRAM, utilisation and stage breakdowns."""
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["section", "key", "value"])
        for k, v in self.summary().items():
            w.writerow(["summary", k, f"{v:.6g}"])
        for e in self.energy:
            w.writerow(["energy_pj", e.label, f"{e.pj:.6g}"])
        for a in self.area:
            w.writerow(["area_mm2", f"{a.kind}:{a.component}", f"{a.mm2:.6g}"])
        for section in ("dram_bytes", "utilisation", "stage_cycles"):
            for k, v in getattr(self, section).items():
                w.writerow([section, k, f"{v:.6g}"])
        return buf.getvalue()
