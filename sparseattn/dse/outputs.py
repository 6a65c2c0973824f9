"""A study's outputs, all written atomically into one directory:

* ``trials.csv`` -- every trial: its point, objectives, constraint values, simulation metrics, reasons;
* ``best.yaml`` (one objective) or ``pareto-<i>.yaml`` (the Pareto front, best first by the first objective) --
  an architecture file with the chosen fields and mapping, ready for
  ``sparseattn simulate --arch best.yaml --shape <shape> --seq <seq>`` (a point with method parameters also
  gets ``<name>.trace.json``, its trace, for ``--trace``);
* ``summary.json`` -- the study, the baseline (the space's architecture and mapping as they are), the best
  trial(s) and counts;
* ``pareto.png`` (two or more objectives) and ``convergence.png`` (:mod:`~sparseattn.dse.plots`).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml

from ..core.files import write_atomic
from .evaluate import Evaluator, TrialOutcome
from .plots import convergence_plot, pareto_plot
from .records import TrialRecord
from .resolve import Space
from .study import StudyResult

MAX_PARETO_FILES = 12


def trials_csv(space: Space, recs: list[TrialRecord]) -> str:
    """Every trial as one CSV row (columns: point, objectives, constraints, metrics, bookkeeping)."""
    metrics = sorted({k for r in recs for k in r.metrics} - set(space.objective_names))
    constraints = sorted({k for r in recs for k in r.constraints})
    head = (["number", "state", "feasible", "duplicate_of"] + space.names + space.objective_names
            + [f"constraint_{c}" for c in constraints] + metrics + ["seconds", "reasons", "error"])
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(head)
    for r in recs:
        objs = r.objectives or {}
        w.writerow([r.number, r.state, r.feasible, "" if r.duplicate_of is None else r.duplicate_of]
                   + [json.dumps(r.point.get(n)) if isinstance(r.point.get(n), list | dict) else r.point.get(n)
                      for n in space.names]
                   + [objs.get(n, "") for n in space.objective_names]
                   + [r.constraints.get(c, "") for c in constraints] + [r.metrics.get(m, "") for m in metrics]
                   + [f"{r.seconds:.4f}", " | ".join(r.reasons), r.error or ""])
    return buf.getvalue()


def arch_yaml(space: Space, rec: TrialRecord, study: str) -> str:
    """The architecture file of a trial's point, with a header saying where it came from and how to run it."""
    cand = space.candidate(rec.point)
    spec = space.file.workload
    objs = ", ".join(f"{k} = {v:.6g}" for k, v in (rec.objectives or {}).items())
    lines = [f"# sparseattn dse: study {study!r}, trial {rec.number}: {objs}",
             f"# point: {json.dumps(rec.point)}",
             f"# run: sparseattn simulate --arch <this file> --shape {spec.shape} --seq {spec.seq}"
             + (f" --batch {spec.batch}" if spec.batch != 1 else "")]
    if cand.method_params:
        lines.append(f"# method parameters ({space.method}): {json.dumps(cand.method_params)}"
                     " -- the trace is the .trace.json beside this file (--trace)")
    data = cand.arch.model_dump(mode="json", exclude_none=True)
    data["name"] = f"{data['name']}-dse{rec.number}"
    body = yaml.safe_dump(data, sort_keys=False)
    return "\n".join(lines) + "\n" + body


def _write_best(space: Space, result: StudyResult, out: Path) -> list[Path]:
    paths = []
    single = len(space.objectives) == 1
    for i, rec in enumerate(result.best[:MAX_PARETO_FILES]):
        stem = "best" if single else f"pareto-{i}"
        paths.append(write_atomic(out / f"{stem}.yaml", arch_yaml(space, rec, result.study_name)))
        cand = space.candidate(rec.point)
        if space.computed_trace:
            from .qkv import method_trace

            trace = method_trace(space.file.accuracy, space.method, cand.method_params, space.shape.causal)
            trace.save(out / f"{stem}.trace.json")
            paths.append(out / f"{stem}.trace.json")
    return paths


def baseline(space: Space) -> TrialOutcome:
    """The space's architecture and mapping as they are (no parameter changed)."""
    return Evaluator(space)({})


def summary(space: Space, result: StudyResult, base: TrialOutcome | None) -> dict[str, Any]:
    recs = result.records
    return {
        "space": space.file.name, "study": result.study_name, "storage": result.storage,
        "objectives": space.objective_names, "parameters": space.names, "grid_size": space.grid_size(),
        "trials": len(recs), "finished": sum(r.state in ("COMPLETE", "PRUNED") for r in recs),
        "feasible": sum(r.ok for r in recs), "evaluated_this_run": result.evaluated,
        "repeated_points": sum(r.duplicate_of is not None for r in recs),
        "wall_s": result.wall_s, "executor": result.executor, "workers": result.workers, "notes": result.notes,
        "baseline": asdict(base) if base is not None else None,
        "best": [asdict(r) for r in result.best],
    }


def write_outputs(space: Space, result: StudyResult, out: Path, with_baseline: bool = True) -> dict[str, Path]:
    """Write every output (module docstring) into ``out``; returns them by name. Every measured trial's objectives
    and metrics hold the result invariants (:mod:`sparseattn.core.invariants`) before anything is written."""
    from ..core.invariants import check_tree

    for r in result.records:
        if r.ok:
            where = f"study {result.study_name} trial {r.number}"
            check_tree({"objectives": r.objectives, "metrics": r.metrics}, where)
    out.mkdir(parents=True, exist_ok=True)
    base = baseline(space) if with_baseline else None
    paths = {"trials.csv": write_atomic(out / "trials.csv", trials_csv(space, result.records))}
    for p in _write_best(space, result, out):
        paths[p.name] = p
    data = summary(space, result, base)
    paths["summary.json"] = write_atomic(out / "summary.json", json.dumps(data, indent=2, default=str))
    if len(space.objectives) >= 2:
        paths["pareto.png"] = pareto_plot(space, result, out / "pareto.png", base)
    paths["convergence.png"] = convergence_plot(space, result, out / "convergence.png")
    return paths
