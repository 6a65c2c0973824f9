"""The study driver: an Optuna study in any storage, trials asked in batches and evaluated by an executor.

**Storage.** Any Optuna storage URL; by default a SQLite file (``<out>/study.db``), so an interrupted study resumes
where it stopped; PostgreSQL (``postgresql://user@host/db``, with ``psycopg``) for many machines. The study keeps
the space it was made for (``space`` user attribute) and refuses to continue with a different one.

**Loop.** The driver asks a batch of trials (``batch``, default the executor's worker count), evaluates their
points on the executor, and tells the results in the batch's order -- so a local pool and a Ray cluster with the
same seed, sampler and batch produce the same trials. ``n_trials`` is the number of finished trials the study
should hold (a resumed study runs only the rest); a grid study holds at most its grid.

**Resume.** Finished trials are never redone. A trial left running by a driver that died (on this host, its
process is gone) is marked failed and its point queued again, first; a driver stopped by SIGTERM or Ctrl-C does
the same for its own trials before it exits. A point seen before is answered from the earlier trial
(``duplicate_of``) without evaluating it.

**Infeasible points** are never simulated; they report their constraint values (``Trial.set_constraint``) and
are told the worst feasible objective values so far (pruned while there are none), so TPE and the GP steer away.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import Trial, TrialState

from ..core.errors import SparseAttnError
from .accuracy import AccuracyTable, param_key
from .evaluate import TrialOutcome, constraint_names
from .executors import make_executor
from .progress import Progress
from .qkv import ensure_qkv
from .records import TrialRecord, best, records
from .resolve import Space
from .samplers import make_sampler

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


@dataclass
class StudyConfig:
    """How to run a study (defaults: the space's ``search`` block, a SQLite file under ``out``)."""

    sampler: str = "tpe"
    n_trials: int = 60
    seed: int = 0
    storage: str | None = None
    study_name: str | None = None
    out: Path = Path("runs/dse")
    workers: int | None = None
    batch: int | None = None
    ray: bool = False
    ray_address: str | None = None
    n_startup: int | None = None
    progress: bool = True


@dataclass
class StudyResult:
    """What a run did: the study, its trials, the best feasible trial(s), and how the work was spread."""

    study_name: str
    storage: str
    records: list[TrialRecord]
    best: list[TrialRecord]
    evaluated: int  # trials this run evaluated (not answered from an earlier trial)
    wall_s: float
    executor: str
    workers: int
    notes: list[str] = field(default_factory=list)


def default_storage(out: Path) -> str:
    out.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(out / 'study.db').resolve()}"


def open_storage(url: str) -> Any:
    """Optuna's storage for ``url``; ``memory`` is an in-process study (nothing persists: tests, quick looks)."""
    return None if url == "memory" else url


def _space_json(space: Space) -> str:
    return space.file.model_dump_json()


def check_storage(url: str, what: str = "--storage") -> None:
    """Refuse a storage URL that cannot work before anything runs: an unknown scheme, a database driver that is
    not installed (naming the package), a SQLite file in a missing directory."""
    if url == "memory":
        return
    import sqlalchemy.exc
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
        dialect = parsed.get_dialect()
    except sqlalchemy.exc.NoSuchModuleError:  # (a subclass of ArgumentError)
        raise SparseAttnError(f"{what} {url!r}: unknown database scheme {parsed.drivername!r}; use "
                              "sqlite:///path/study.db or postgresql://user@host/db") from None
    except sqlalchemy.exc.ArgumentError as err:
        raise SparseAttnError(f"{what} {url!r} is not a storage URL ({err}); use sqlite:///path/study.db or "
                              "postgresql://user@host/db") from None
    try:
        dialect.import_dbapi()
    except ImportError as err:
        raise SparseAttnError(f"{what} {url!r}: its database driver is not installed ({err}); install the dse "
                              "extra: pip install 'sparseattn[dse]'") from None
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        folder = Path(parsed.database).parent
        if not folder.is_dir():
            raise SparseAttnError(f"{what} {url!r}: directory {str(folder)!r} does not exist")


def _create(storage: str, name: str, n_objectives: int) -> optuna.Study:
    """Create or load the study, retrying the races of drivers that open a fresh storage at once (both create its
    tables, or the study); an unreachable database is an error naming the URL."""
    import sqlalchemy.exc

    for attempt in range(20):
        try:
            return optuna.create_study(storage=open_storage(storage), study_name=name, load_if_exists=True,
                                       sampler=optuna.samplers.RandomSampler(),  # replaced once trials are known
                                       directions=["minimize"] * n_objectives)
        except (sqlalchemy.exc.IntegrityError, optuna.exceptions.DuplicatedStudyError):
            time.sleep(0.05 * (attempt + 1))  # another driver is creating the same tables or study
        except sqlalchemy.exc.OperationalError as err:
            if ("locked" in str(err) or "already exists" in str(err)) and attempt < 19:  # the same race
                time.sleep(0.05 * (attempt + 1))
                continue
            first = str(err.orig if err.orig is not None else err).strip().splitlines()[0]
            raise SparseAttnError(f"--storage {storage!r}: cannot open the database ({first})") from None
    raise SparseAttnError(f"--storage {storage!r}: the study could not be created (other drivers kept racing)")


def open_study(space: Space, cfg: StudyConfig, storage: str, name: str) -> optuna.Study:
    """Create the study or load it; a study made for another space is an error."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    check_storage(storage)
    study = _create(storage, name, len(space.objectives))
    held = len(study.get_trials(deepcopy=False))
    study.sampler = make_sampler(cfg.sampler, space, cfg.seed, cfg.n_startup, held)
    mine = space.file.model_dump(mode="json", exclude={"base_dir"})
    stored = study.user_attrs.get("space")
    if stored is None:
        study.set_user_attr("space", mine)
        study.set_user_attr("space_json", _space_json(space))
    elif stored != json.loads(json.dumps(mine)):
        raise SparseAttnError(f"study {name!r} in {storage} was made for a different search space; give another "
                              "--study name or the same space")
    return study


# ---------------------------------------------------------------------------------------------- resume
def _driver_id() -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid(), "token": uuid.uuid4().hex[:8]}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _assigned_point(study: optuna.Study, trial: optuna.trial.FrozenTrial, names: set[str]) -> dict[str, Any] | None:
    """The whole point a running trial was given, or ``None`` when none was chosen yet. A driver stopped inside
    ``ask`` leaves a trial with some or none of its parameters: an enqueued point is in its ``fixed_params``, a grid
    trial's in its grid id; any other sampler had chosen nothing that can be lost."""
    point = {**trial.system_attrs.get("fixed_params", {}), **trial.params}
    if set(point) >= names:
        return point
    grid = getattr(study.sampler, "grid_point", None)
    point = grid(trial) if grid is not None else None
    return point if point is not None and set(point) >= names else None


def _requeue(study: optuna.Study, trial: Any, names: set[str]) -> None:
    """Mark a running trial failed and queue its point again (it is then asked first); a trial stopped before its
    point was chosen is failed and not queued (queueing a partial point breaks the grid sampler's next ask)."""
    frozen = study._storage.get_trial(trial._trial_id)
    if frozen.state != TrialState.RUNNING:
        return
    point = _assigned_point(study, frozen, names)
    if point is not None:
        study.enqueue_trial(point, user_attrs={"retry_of": trial.number}, skip_if_exists=False)
    study._storage.set_trial_user_attr(trial._trial_id, "requeued", point is not None)
    study.tell(trial.number, state=TrialState.FAIL)


DRIVER_ATTR = "driver:"  # study attribute prefix: every driver that ever asked a trial of this study


def register_driver(study: optuna.Study, me: dict[str, Any]) -> None:
    """Record this driver on the study before it asks any trial (so a trial it leaves untagged can be traced)."""
    study.set_user_attr(DRIVER_ATTR + me["token"], me)


def _dead_here(driver: dict[str, Any], me: dict[str, Any]) -> bool:
    return driver.get("host") == me["host"] and driver.get("token") != me["token"] and not _alive(driver["pid"])


def recover_stale(study: optuna.Study, me: dict[str, Any], names: set[str]) -> list[int]:
    """Fail and requeue trials left running by dead drivers on this host (other hosts' trials are left alone).

    A trial is tagged with its driver right after it is asked; a driver killed between the two leaves it untagged.
    Such a trial is stale when every other driver registered on the study (:func:`register_driver`) ran on this
    host and is gone; with a driver elsewhere it might be that one's, so it is left alone."""
    others = [d for k, d in study.user_attrs.items() if k.startswith(DRIVER_ATTR) and d.get("token") != me["token"]]
    untagged_dead = all(_dead_here(d, me) for d in others)
    stale = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        driver = t.user_attrs.get("driver")
        if _dead_here(driver, me) if driver else untagged_dead:
            _requeue(study, t, names)
            stale.append(t.number)
    return stale


@contextmanager
def _sigterm_as_interrupt():
    """SIGTERM raises KeyboardInterrupt in the driver, so it requeues its running trials before it exits."""
    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        old = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


# ---------------------------------------------------------------------------------------------- telling
def _penalty(recs: list[TrialRecord]) -> list[float] | None:
    ok = [list(r.objectives.values()) for r in recs if r.ok]
    return [max(col) for col in zip(*ok, strict=True)] if ok else None


def _tell(study: optuna.Study, trial: Trial, point: dict[str, Any], outcome: TrialOutcome,
          penalty: list[float] | None, duplicate_of: int | None) -> None:
    trial.set_user_attr("dse", {
        "point": point, "feasible": outcome.feasible, "reasons": outcome.reasons, "objectives": outcome.values,
        "constraints": outcome.constraints, "metrics": outcome.metrics, "seconds": outcome.seconds,
        "error": outcome.error, "duplicate_of": duplicate_of})
    if outcome.error is not None:
        study.tell(trial, state=TrialState.FAIL)
        return
    for name, value in outcome.constraints.items():
        trial.set_constraint(name, value)
    if outcome.values is not None:
        study.tell(trial, outcome.values)
    elif penalty is not None:
        study.tell(trial, penalty)
    else:
        study.tell(trial, state=TrialState.PRUNED)


def _known(recs: list[TrialRecord]) -> dict[str, TrialRecord]:
    return {param_key(r.point): r for r in reversed(recs)
            if r.state in ("COMPLETE", "PRUNED") and r.duplicate_of is None}


# ---------------------------------------------------------------------------------------------- the loop
def prepare(space: Space, report: Any = print) -> None:
    """Compute what trials read and must never compute: the accuracy table and the captured Q/K/V."""
    if space.needs_accuracy:
        table = AccuracyTable(space.file.accuracy, space.method, space.accuracy_layers)
        n = table.fill(space.method_points(), report)
        if n:
            report(f"accuracy table {table.path}: {n} entries computed")
    if space.computed_trace:
        ensure_qkv(space.file.accuracy)


def _run_batch(study: optuna.Study, space: Space, executor: Any, k: int, me: dict[str, Any],
               in_flight: list[Trial]) -> int:
    """Ask ``k`` trials, evaluate the new points, tell all; returns how many were evaluated."""
    dists = space.distributions()
    for _ in range(k):
        trial = study.ask(dists)
        trial.set_user_attr("driver", me)
        in_flight.append(trial)
    recs = records(study, space.objective_names)
    known = _known(recs)
    points = [space.decode(t.params) for t in in_flight]
    keys = [param_key(p) for p in points]
    todo = list(dict.fromkeys(k for k in keys if k not in known))
    outcomes = dict(zip(todo, executor.map([json.loads(k) for k in todo]), strict=True))
    penalty = _penalty(recs)
    for trial, point, key in zip(list(in_flight), points, keys, strict=True):
        dup = known.get(key)
        outcome = dup.outcome() if dup is not None else outcomes[key]
        _tell(study, trial, point, outcome, penalty, dup.number if dup is not None else None)
        in_flight.remove(trial)
    return len(todo)


def _target(space: Space, cfg: StudyConfig, notes: list[str]) -> int:
    if cfg.sampler == "grid":
        size = space.grid_size() or 0
        if cfg.n_trials > size:
            notes.append(f"the grid has {size} points: n_trials lowered from {cfg.n_trials}")
            return size
    return cfg.n_trials


def run_study(space: Space, cfg: StudyConfig) -> StudyResult:
    """Run (or resume) the study of ``space`` until it holds ``cfg.n_trials`` finished trials."""
    start = time.perf_counter()
    storage = cfg.storage or default_storage(Path(cfg.out))
    name = cfg.study_name or space.file.name
    study = open_study(space, cfg, storage, name)
    me, notes = _driver_id(), []
    names = set(space.distributions())
    if stale := recover_stale(study, me, names):
        notes.append(f"requeued trials {stale} left running by a stopped driver")
    register_driver(study, me)
    target = _target(space, cfg, notes)
    prepare(space, (lambda m: None) if not cfg.progress else print)
    executor = make_executor(_space_json(space), cfg.workers, cfg.ray, cfg.ray_address)
    batch = cfg.batch or executor.workers
    in_flight: list[Trial] = []
    evaluated = 0
    try:
        with _sigterm_as_interrupt(), Progress(space, target, cfg.progress) as bar:
            while (done := len(study.get_trials(deepcopy=False, states=FINISHED))) < target:
                bar.update(study, done)
                evaluated += _run_batch(study, space, executor, min(batch, target - done), me, in_flight)
            bar.update(study, target)
    finally:
        for trial in in_flight:
            _requeue(study, trial, names)
        executor.close()
    recs = records(study, space.objective_names)
    return StudyResult(study_name=name, storage=storage, records=recs, best=best(recs), evaluated=evaluated,
                       wall_s=time.perf_counter() - start, executor=executor.kind, workers=executor.workers,
                       notes=notes)


def load_result(storage: str, study_name: str, space: Space) -> StudyResult:
    """The records and best trial(s) of a stored study (for reports), without running anything."""
    study = optuna.load_study(study_name=study_name, storage=storage)
    recs = records(study, space.objective_names)
    return StudyResult(study_name, storage, recs, best(recs), 0, 0.0, "none", 0)


__all__ = ["StudyConfig", "StudyResult", "constraint_names", "load_result", "open_study", "prepare", "run_study"]
