"""The study's progress bar (rich): finished trials of the target, and the best feasible value so far (one
objective) or the size of the Pareto front (several). Silent when ``enabled`` is false."""

from __future__ import annotations

from typing import Any

import optuna
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress

from .records import best, records
from .resolve import Space


class Progress:
    """A context manager around a rich progress bar for one study."""

    def __init__(self, space: Space, total: int, enabled: bool = True):
        self.space, self.total, self.enabled = space, total, enabled
        self.bar = RichProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TimeElapsedColumn(), disable=not enabled, transient=False)
        self.task: Any = None

    def __enter__(self) -> Progress:
        self.bar.__enter__()
        self.task = self.bar.add_task(f"dse {self.space.file.name}", total=self.total)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.bar.__exit__(*exc)

    def describe(self, study: optuna.Study) -> str:
        names = self.space.objective_names
        top = best(records(study, names))
        if not top:
            return f"dse {self.space.file.name}: no feasible trial yet"
        if len(names) == 1:
            return f"dse {self.space.file.name}: best {names[0]} {top[0].objectives[names[0]]:.5g} (#{top[0].number})"
        return f"dse {self.space.file.name}: Pareto front of {len(top)}"

    def update(self, study: optuna.Study, done: int) -> None:
        if self.enabled:
            self.bar.update(self.task, completed=done, description=self.describe(study))
