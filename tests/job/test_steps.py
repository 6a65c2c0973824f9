"""The main job's steps: one ordered list (:data:`STEPS`) that the plan, the runner and the report all follow; a
step the configuration disables is skipped; a new step is one class (its own row model, run and section) and one
line; stored rows are typed and a malformed one is refused naming the field, never a KeyError."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel, ValidationError
from typer.testing import CliRunner

from sparseattn.cli import app
from sparseattn.core.files import CorruptFileError
from sparseattn.job.config import RunConfig, load_config
from sparseattn.job.runner import enabled_steps, plan_job, run_step, write_report
from sparseattn.job.step import Context, Done, Step
from sparseattn.job.steps import STEPS
from sparseattn.job.store import ResultStore, default_row_types
from sparseattn.report.rows import AccuracyRow, HardwareRow, RunView

INPUTS = {"text_sha256": "0" * 16, "model_sha256": "1" * 16}


def _store(tmp_path: Path, cfg: RunConfig, steps: tuple[Step, ...] = STEPS) -> ResultStore:
    types = {t: k for s in steps for t, k in s.tables.items()}
    return ResultStore(tmp_path, cfg, inputs=INPUTS, row_types=types)


def test_steps_is_the_one_ordered_list_the_plan_follows(tmp_path):
    names = [s.name for s in STEPS]
    assert names == ["accuracy", "encoder", "hardware", "reproduce", "spatial", "dse", "kernels", "calibration"]
    assert len(set(names)) == len(names) and all(s.name in s.tables for s in STEPS)
    cfg = RunConfig(device="cuda")  # every step has units left on a fresh CUDA run
    assert [p.name for p in plan_job(cfg, _store(tmp_path, cfg))] == [*names, "report"]
    quick = RunConfig(quick=True).effective()  # no claims in quick mode; kernels have nothing to time on a CPU
    assert [p.name for p in plan_job(quick, _store(tmp_path, quick))] == [
        s.name for s in STEPS if s.enabled(quick) and s.name != "kernels"] + ["report"]
    assert default_row_types() == {t: k for s in STEPS for t, k in s.tables.items()}


def test_a_step_disabled_by_the_configuration_is_skipped(tmp_path):
    cfg = load_config(None, {"encoder": None, "budgets": [], "dse_trials": 0, "spatial": False,
                             "reproduce": False})
    assert [s.name for s in enabled_steps(cfg)] == ["accuracy", "hardware", "kernels"]
    planned = [p.name for p in plan_job(cfg, _store(tmp_path, cfg))]
    assert planned == ["accuracy", "hardware", "report"]  # kernels: nothing to time on a CPU


def test_progress_counts_only_the_units_a_resumed_run_lacks(tmp_path):
    from tests.report.rowfactory import accuracy

    cfg = RunConfig(methods=["topk", "pade"], encoder=None, budgets=[])
    store = _store(tmp_path, cfg)
    assert {p.name: p.units for p in plan_job(cfg, store)}["accuracy"] == 3
    store.put("accuracy", "dense", accuracy(1.0, None))
    store.put("accuracy", "topk", accuracy(0.2, 0.1))
    assert {p.name: p.units for p in plan_job(cfg, store)}["accuracy"] == 1


class NoteRow(BaseModel):
    """The new step's own row."""

    word: str
    length: int


class Notes(Step):
    """A step as a contributor would add it: one class, its row model, its section."""

    name: ClassVar[str] = "notes"
    title: ClassVar[str] = "Notes on the run"
    unit_name: ClassVar[str] = "word"
    tables: ClassVar[dict[str, Any]] = {"notes": NoteRow}

    def __init__(self, words: list[str], on: bool = True) -> None:
        self.words, self.on = words, on

    def enabled(self, cfg: RunConfig) -> bool:
        return self.on

    def units(self, cfg: RunConfig) -> list[str]:
        return self.words

    def run(self, ctx: Context) -> Iterator[Done]:
        for w in self.words:
            if not ctx.done("notes", w):
                ctx.tick(w)
                yield Done(w, NoteRow(word=w, length=len(w)))

    def section(self, view: RunView, figs: dict[str, Path]) -> str:
        rows = view.units.get("notes", {})
        return "<p>" + ", ".join(f"{r.word}={r.length}" for r in rows.values()) + "</p>"


class Broken(Notes):
    name: ClassVar[str] = "broken"
    tables: ClassVar[dict[str, Any]] = {"broken": NoteRow}

    def run(self, ctx: Context) -> Iterator[Done]:
        raise AssertionError("a disabled step must not run")


def test_a_new_step_is_one_class_and_one_line(tmp_path):
    steps = (Notes(["sparse", "attention"]), Broken([], on=False))
    cfg = RunConfig(encoder=None)
    store = _store(tmp_path, cfg, steps)
    assert [p.name for p in plan_job(cfg, store, steps)] == ["notes", "report"]
    seen = []
    for step in enabled_steps(cfg, steps):
        run_step(step, Context(cfg, store, lambda detail, unit=True: seen.append(detail)))
    assert seen == ["sparse", "attention"] and store.get("notes", "attention") == NoteRow(word="attention", length=9)
    again = _store(tmp_path, cfg, steps).open(resume=True)  # stored as JSON, read back typed
    assert again.get("notes", "sparse") == NoteRow(word="sparse", length=6) and "broken" not in again.units
    html = write_report(again, steps).read_text()
    assert "Notes on the run" in html and "sparse=6, attention=9" in html


def test_a_malformed_stored_row_is_refused_naming_the_field(tmp_path):
    from tests.report.rowfactory import accuracy

    cfg = RunConfig()
    store = _store(tmp_path, cfg)
    store.put("accuracy", "dense", accuracy(1.0, None))
    data = json.loads(store.path.read_text())
    assert data["steps"]["accuracy"]["dense"]["ppl"] == 60.0 and "ppl_change" not in data["steps"]["accuracy"]["dense"]
    data["steps"]["accuracy"]["dense"]["ppl"] = "high"
    del data["steps"]["accuracy"]["dense"]["density"]
    store.path.write_text(json.dumps(data))
    with pytest.raises(CorruptFileError, match=r"step 'accuracy', unit 'dense': ppl: Input should be a valid "
                                               r"number.*\(got 'high'\); density: Field required.*--restart"):
        _store(tmp_path, cfg).open(resume=True)
    data["steps"] = {"accuracy": {}, "vibes": {"x": 1}}
    store.path.write_text(json.dumps(data))
    with pytest.raises(CorruptFileError, match="step 'vibes' this version does not have"):
        _store(tmp_path, cfg).open(resume=True)


def test_a_row_model_rejects_unknown_and_missing_fields():
    from tests.report.rowfactory import hardware

    good = hardware("pade", "pade", 1.0, 2.0).model_dump()
    assert HardwareRow.model_validate(good).latency_ms == 1.0
    with pytest.raises(ValidationError, match="speedup"):
        HardwareRow.model_validate({**good, "speedup": 3.0})  # an old row with a field this version lacks
    with pytest.raises(ValidationError, match="trace"):
        AccuracyRow.model_validate({"method": "topk"})
    with pytest.raises(ValidationError):
        ResultStore(Path("/nonexistent"), RunConfig(), inputs=INPUTS).put("hardware", "x", {"arch": "pade"})


def test_an_old_results_file_is_refused_through_the_cli(tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("Call me Ishmael. Some years ago, never mind how long precisely. " * 200)
    cfg = load_config(None, {"text": str(text), "quick": True}).effective()
    out = tmp_path / "run"
    ResultStore(out, cfg).save()
    data = json.loads((out / "results.json").read_text())
    data["steps"] = {"hardware": {"pade@decoder": {"arch": "pade", "vs": {"h100": {"speedup": 2.0}}}}}
    (out / "results.json").write_text(json.dumps(data))
    result = CliRunner().invoke(app, ["run", "--text", str(text), "--quick", "--resume", "--out", str(out)],
                                terminal_width=200)
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())
    assert "pade@decoder" in message and "--restart" in message and "Traceback" not in message
