"""Where trials run: in the driver (``inline``), a local process pool (``pool``, the default for more than one
worker) or Ray tasks (``ray``: ``address="auto"`` or ``"ray://host:port"`` joins a cluster; ``None`` starts an
embedded local Ray). Each executor maps the worker entry point over a batch of points and returns the outcomes in
the batch's order, so the study's history does not depend on which worker finished first.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from typing import Any

from .evaluate import TrialOutcome, evaluate_point


class InlineExecutor:
    """Trials one after another in the driver process."""

    kind = "inline"

    def __init__(self, space_json: str):
        self.fn = partial(evaluate_point, space_json)
        self.workers = 1

    def map(self, points: Sequence[dict[str, Any]]) -> list[TrialOutcome]:
        return [self.fn(p) for p in points]

    def close(self) -> None:
        pass


class PoolExecutor(InlineExecutor):
    """A local pool of ``workers`` processes (spawned: no state of the driver is inherited)."""

    kind = "pool"

    def __init__(self, space_json: str, workers: int):
        super().__init__(space_json)
        self.workers = workers
        self.pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))

    def map(self, points: Sequence[dict[str, Any]]) -> list[TrialOutcome]:
        return list(self.pool.map(self.fn, points))

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


class RayExecutor:
    """Ray tasks (one CPU each) on a cluster at ``address``, or on an embedded local Ray (``address=None``, with
    ``num_cpus`` CPUs: default all)."""

    kind = "ray"

    def __init__(self, space_json: str, address: str | None, num_cpus: int | None = None):
        import ray

        self.ray = ray
        self.started = not ray.is_initialized()
        if self.started:
            kw: dict[str, Any] = {"address": address} if address else {"num_cpus": num_cpus, "include_dashboard": False}
            ray.init(log_to_driver=False, configure_logging=False, **kw)
        self.workers = int(ray.cluster_resources().get("CPU", 1))
        self.space_ref = ray.put(space_json)
        self.task: Callable[..., Any] = ray.remote(num_cpus=1)(evaluate_point)

    def map(self, points: Sequence[dict[str, Any]]) -> list[TrialOutcome]:
        return self.ray.get([self.task.remote(self.space_ref, p) for p in points])

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()


def make_executor(space_json: str, workers: int | None = None, ray: bool = False,
                  ray_address: str | None = None) -> InlineExecutor | PoolExecutor | RayExecutor:
    """Ray when ``ray`` or ``ray_address`` is given, else a process pool of ``workers`` (default: the CPU count),
    else (one worker) the driver itself."""
    if ray or ray_address:
        return RayExecutor(space_json, ray_address, workers)
    workers = workers or os.cpu_count() or 1
    return PoolExecutor(space_json, workers) if workers > 1 else InlineExecutor(space_json)
