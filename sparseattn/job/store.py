"""``results.json`` of a run directory: the configuration, the environment, the inputs' content hashes and every
step's finished units as typed rows (:mod:`sparseattn.report.rows`), written with ``model_dump`` after every unit
(atomically) and validated against each step's row type when a run resumes."""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from ..core.errors import InvalidParameterError, describe_validation_error
from ..core.files import CorruptFileError, read_json_object, write_atomic
from ..report.rows import RunView
from .config import RunConfig

FORMAT = 2  # 2: typed rows; the reproduce step stores one unit ``claims`` holding the claims and the validation
HINT = "; rerun with --restart to move it aside (it is kept, renamed .bad-<time>) and start afresh"


def environment() -> dict[str, str]:
    """Versions and machine, recorded with every result."""
    import torch
    import transformers

    from ..core.version import __version__

    return {"sparseattn": __version__, "torch": torch.__version__, "transformers": transformers.__version__,
            "python": platform.python_version(), "machine": platform.machine(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "threads": str(torch.get_num_threads())}


def run_inputs(cfg: RunConfig) -> dict[str, str]:
    """Content hashes of a run's inputs (the text's characters, the model's and encoder's files or bundled names):
    a resume whose inputs changed is refused, naming what changed."""
    import hashlib

    from ..core.files import content_sha256
    from ..eval.corpora import load_text

    out = {"text_sha256": hashlib.sha256(load_text(cfg.text).encode("utf-8")).hexdigest()[:16],
           "model_sha256": content_sha256(cfg.model)[:16]}
    if cfg.encoder:
        out["encoder_sha256"] = content_sha256(cfg.encoder)[:16]
    return out


def dump(value: Any) -> Any:
    """A row (or a list or dict of rows) as JSON data: the fields it was given, as ``model_dump`` writes them."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_unset=True)
    if isinstance(value, list | tuple):
        return [dump(v) for v in value]
    if isinstance(value, dict):
        return {str(k): dump(v) for k, v in value.items()}
    return value


def _well_formed(data: dict[str, Any]) -> bool:
    """``steps`` maps steps to dicts of units, ``seconds`` steps to numbers, ``inputs`` names to strings."""
    steps, seconds, inputs = data.get("steps"), data.get("seconds", {}), data.get("inputs", {})
    return (isinstance(steps, dict) and all(isinstance(v, dict) for v in steps.values())
            and isinstance(seconds, dict) and all(isinstance(v, int | float) and not isinstance(v, bool)
                                                  for v in seconds.values())
            and isinstance(inputs, dict) and all(isinstance(v, str) for v in inputs.values()))


def default_row_types() -> dict[str, Any]:
    """Every table of the job's steps (:data:`sparseattn.job.steps.STEPS`) with the type of one unit."""
    from .steps import STEPS

    return {table: kind for step in STEPS for table, kind in step.tables.items()}


class ResultStore:
    """The run's results: ``units[table][unit]`` typed rows, saved atomically after every unit so an interrupted run
    resumes and loses nothing. ``row_types`` maps each table to the type of its units (default: the job's steps)."""

    def __init__(self, out: Path, config: RunConfig, inputs: dict[str, str] | None = None,
                 row_types: Mapping[str, Any] | None = None) -> None:
        self.out, self.config = out, config
        self.path = out / "results.json"
        self.inputs = inputs if inputs is not None else run_inputs(config)
        self.environment = environment()
        self.row_types = dict(row_types) if row_types is not None else default_row_types()
        self.units: dict[str, dict[str, Any]] = {}
        self.seconds: dict[str, float] = {}

    @classmethod
    def read(cls, out: Path) -> ResultStore:
        """The finished or interrupted run in ``out`` as it was stored (its configuration, inputs and environment),
        each row validated; for rewriting its report with the current code."""
        data = read_json_object(out / "results.json", "results file", HINT)
        try:
            cfg = RunConfig.model_validate(data.get("config"))
        except ValidationError as err:
            raise CorruptFileError(describe_validation_error(err, f"{out / 'results.json'}: config") + HINT) from None
        store = cls(out, cfg, inputs=data.get("inputs") if isinstance(data.get("inputs"), dict) else {}).open(True)
        store.environment = data.get("environment", store.environment)
        return store

    def open(self, resume: bool) -> ResultStore:
        """Load an existing store when resuming (refusing a corrupt one or another configuration's)."""
        if not self.path.exists():
            return self
        if not resume:
            raise InvalidParameterError(f"{self.out} already holds a run; pass --resume to continue it, or choose "
                                        "another --out")
        old = read_json_object(self.path, "results file", HINT)
        if old.get("format") != FORMAT or not _well_formed(old):
            raise CorruptFileError(f"results file {str(self.path)!r} is not a run of this version (it needs format "
                                   f"{FORMAT}, 'steps': {{step: {{unit: result}}}} and 'seconds': {{step: number}})"
                                   + HINT)
        if old.get("config") != self.config.model_dump():
            raise InvalidParameterError(f"{self.path} holds a run with other options; resume with the same options "
                                        "or use a new --out")
        changed = [k.removesuffix("_sha256") for k in self.inputs if old.get("inputs", {}).get(k) != self.inputs[k]]
        if changed:
            raise InvalidParameterError(
                f"{self.path} was computed from other inputs: the {' and the '.join(changed)} changed since (by "
                "content); resuming would mix them in one report. Restore them, or rerun with --restart to move "
                "the old results aside and start afresh")
        self.units = {table: self._load(table, units) for table, units in old["steps"].items()}
        self.seconds = dict(old.get("seconds", {}))
        return self

    def _load(self, table: str, units: dict[str, Any]) -> dict[str, Any]:
        """One table's stored units, each validated against the table's row type."""
        if table not in self.row_types:
            raise CorruptFileError(f"results file {str(self.path)!r} holds a step {table!r} this version does not "
                                   "have" + HINT)
        adapter = TypeAdapter(self.row_types[table])
        out = {}
        for unit, raw in units.items():
            try:
                out[unit] = adapter.validate_python(raw)
            except ValidationError as err:
                where = f"results file {str(self.path)!r}, step {table!r}, unit {unit!r}"
                raise CorruptFileError(describe_validation_error(err, where) + HINT) from None
        return out

    def get(self, table: str, unit: str) -> Any:
        """The typed row of ``unit`` in ``table``, or None when it is not done yet."""
        return self.units.get(table, {}).get(unit)

    def table(self, table: str) -> dict[str, Any]:
        """Every finished unit of ``table`` (unit -> typed row), in the order they were done."""
        return dict(self.units.get(table, {}))

    def put(self, table: str, unit: str, row: Any) -> None:
        """Store one finished unit (checked to be the table's row type) and save at once."""
        if table not in self.row_types:
            raise KeyError(f"no step stores a table {table!r}")
        self.units.setdefault(table, {})[unit] = TypeAdapter(self.row_types[table]).validate_python(row)
        self.save()

    def timed(self, step: str, seconds: float) -> None:
        self.seconds[step] = self.seconds.get(step, 0.0) + seconds
        self.save()

    def to_json(self) -> dict[str, Any]:
        """What ``results.json`` holds."""
        return {"format": FORMAT, "config": self.config.model_dump(), "environment": self.environment,
                "inputs": self.inputs, "steps": dump(self.units), "seconds": self.seconds}

    def save(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, json.dumps(self.to_json(), indent=1, default=str))

    def view(self) -> RunView:
        """The results as the report reads them."""
        meta = {"config": self.config.model_dump(), "environment": self.environment, "seconds": self.seconds}
        return RunView(out=self.out, config=self.config, units=self.units, meta=meta)


class Clock:
    """Seconds spent in a step, added to the store when the step ends."""

    def __init__(self, store: ResultStore, step: str) -> None:
        self.store, self.step = store, step

    def __enter__(self) -> Clock:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.store.timed(self.step, time.perf_counter() - self.start)
