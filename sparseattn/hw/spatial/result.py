"""What a mesh simulation measured: :class:`MeshResult`, a :class:`~sparseattn.hw.result.SimResult` with the mesh's
own fields (throughput, per-core and per-link utilisation, HBM per stack, the layout the orchestrator chose and
every candidate it weighed), so everything that reads a ``SimResult`` (the CLI, JSON/CSV, reports) reads it too.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any

from ..result import SimResult


@dataclass
class MeshResult(SimResult):
    """A :class:`SimResult` plus the mesh fields (see the module docstring).

    ``core_utilisation`` is busy cycles / run cycles per core as a ``rows x cols`` grid; ``links`` one record per
    directed link (``src``, ``dst`` as ``"r,c"`` or ``"hbm<i>"``, ``bytes``, ``utilisation`` = bytes / (bandwidth x
    run time)); ``hbm`` one record per stack; ``latency_breakdown`` the analytical model's terms (cycles summed over
    layers) and its bottleneck; ``candidates`` every layout the orchestrator estimated.
    """

    design: str = ""
    mesh: dict[str, Any] = field(default_factory=dict)
    dataflow: str = ""
    tokens_per_s: float = 0.0
    layer_latency_s: list[float] = field(default_factory=list)
    core_utilisation: list[list[float]] = field(default_factory=list)
    links: list[dict[str, Any]] = field(default_factory=list)
    hbm: list[dict[str, Any]] = field(default_factory=list)
    latency_breakdown: dict[str, Any] = field(default_factory=dict)
    candidates: list[dict[str, Any]] = field(default_factory=list)

    @property
    def noc_bytes(self) -> float:
        return sum(link["bytes"] for link in self.links if not link["channel"])

    @property
    def hbm_bytes(self) -> float:
        return sum(s["read_bytes"] + s["write_bytes"] for s in self.hbm)

    @property
    def max_link_utilisation(self) -> float:
        return max((link["utilisation"] for link in self.links if not link["channel"]), default=0.0)

    @property
    def mean_core_utilisation(self) -> float:
        cells = [u for row in self.core_utilisation for u in row]
        return sum(cells) / len(cells) if cells else 0.0

    def summary(self) -> dict[str, float]:
        return {
            **super().summary(),
            "tokens_per_s": self.tokens_per_s,
            "mean_core_utilisation": self.mean_core_utilisation,
            "max_link_utilisation": self.max_link_utilisation,
            "max_hbm_utilisation": max((s["utilisation"] for s in self.hbm), default=0.0),
            "noc_gb": self.noc_bytes / 1e9,
            "hbm_gb": self.hbm_bytes / 1e9,
        }

    def to_csv(self) -> str:
        """The single-core CSV plus per-core utilisation, per-link and per-stack rows."""
        buf = io.StringIO()
        w = csv.writer(buf)
        for r, row in enumerate(self.core_utilisation):
            for c, u in enumerate(row):
                w.writerow(["core_utilisation", f"{r},{c}", f"{u:.6g}"])
        for link in self.links:
            w.writerow(["link_utilisation", f"{link['src']}->{link['dst']}", f"{link['utilisation']:.6g}"])
        for i, s in enumerate(self.hbm):
            w.writerow(["hbm_utilisation", f"hbm{i}", f"{s['utilisation']:.6g}"])
        return super().to_csv() + buf.getvalue()
