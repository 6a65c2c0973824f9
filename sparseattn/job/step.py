"""What a step of the main job is (:class:`Step`) and what it runs with (:class:`Context`).

A step is one module of :mod:`sparseattn.job.steps` and one line of :data:`sparseattn.job.steps.STEPS`: whether the
configuration enables it, the units it iterates (for "method i of n" progress and for resuming: a unit the store
holds is not redone), its nominal cost, the typed rows it yields one unit at a time, and its section of the report
(drawn by :mod:`sparseattn.report`, which knows nothing of the job).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

from ..report.rows import RunView
from .config import RunConfig
from .store import ResultStore

Tick = Callable[..., None]  # tick(detail) starts a unit; tick(detail, unit=False) only describes it


class Done(NamedTuple):
    """One finished unit: its key, its typed row and the table it goes to (``None``: the step's own)."""

    unit: str
    row: Any
    table: str | None = None


@dataclass
class Context:
    """What a step runs with: the configuration, the store (finished units, the output directory), the progress
    tick, and the models, each loaded once when a step first asks for it."""

    cfg: RunConfig
    store: ResultStore
    tick: Tick = lambda *a, **k: None
    models: dict[str, Any] = field(default_factory=dict)  # loaded models by name

    @property
    def out(self) -> Path:
        return self.store.out

    def model(self, name: str) -> Any:
        """The loaded model ``name`` (the decoder or the encoder), loaded on the run's device the first time."""
        if name not in self.models:
            from ..models.loader import load_model

            self.models[name] = load_model(name, device=self.cfg.device)
        return self.models[name]

    def done(self, table: str, unit: str) -> bool:
        return self.store.get(table, unit) is not None


class Step(ABC):
    """One step of the main job. Subclasses set the class attributes and implement :meth:`run` and
    :meth:`section`; the runner (:mod:`sparseattn.job.runner`) times each enabled step, stores every unit it yields
    and asks every step for its section of the report."""

    name: ClassVar[str]  # the step's name in progress, in results.json (its table) and in ``seconds``
    title: ClassVar[str]  # its section's title in the report
    unit_name: ClassVar[str]  # what one unit is called in progress ("method", "simulation")
    tables: ClassVar[dict[str, Any]]  # every table the step stores -> the type of one unit (its row model)

    @abstractmethod
    def enabled(self, cfg: RunConfig) -> bool:
        """Whether the configuration asks for this step."""

    @abstractmethod
    def units(self, cfg: RunConfig) -> list[str]:
        """The units of the step's own table the configuration asks for (progress counts the missing ones)."""

    def unit_s(self, cfg: RunConfig) -> float:
        """Nominal seconds of one unit (:mod:`sparseattn.job.progress`)."""
        return 0.0

    def fixed_s(self, cfg: RunConfig) -> float:
        """Nominal seconds the step spends besides its units (loading a model)."""
        return 0.0

    def start(self, cfg: RunConfig) -> str:
        """What progress shows when the step starts ("" shows its name)."""
        return ""

    def progress_units(self, cfg: RunConfig, store: ResultStore) -> int:
        """How many units progress counts as left: the configured units the store does not hold."""
        return sum(store.get(self.name, u) is None for u in self.units(cfg))

    @abstractmethod
    def run(self, ctx: Context) -> Iterator[Done]:
        """Do the units the store does not hold yet, yielding each as soon as it is done (the runner stores it)."""

    @abstractmethod
    def section(self, view: RunView, figs: dict[str, Path]) -> str:
        """The step's part of ``report.html`` (HTML), drawn from the run's typed results."""
