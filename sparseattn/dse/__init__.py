"""Design-space exploration (DESIGN.md, ``dse/`` above ``hw/``): Bayesian search over cross-stage tiling,
architecture fields and method parameters, on Optuna (TPE, GP, grid, random), resumable in any Optuna storage
(SQLite by default, PostgreSQL for many machines), distributed on Ray or a local process pool.

    from sparseattn.dse import load_space, run_study, StudyConfig, write_outputs
    space = load_space("star-tiling")                      # bundled, or a YAML path
    result = run_study(space, StudyConfig(sampler="gp", n_trials=40, out=Path("runs/dse/star")))
    write_outputs(space, result, Path("runs/dse/star"))    # best.yaml, trials.csv, plots, summary.json

The space file's schema is in :mod:`~sparseattn.dse.space`; objectives in :mod:`~sparseattn.dse.objectives`
(SOFA's own tiling objective in :mod:`~sparseattn.dse.sofa_objective`); the command line is ``sparseattn dse``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .accuracy import AccuracyTable
from .evaluate import Evaluator, TrialOutcome, evaluate_point
from .objectives import OBJECTIVES, Measured, Objective
from .records import TrialRecord, pareto_front
from .resolve import Space, resolve
from .samplers import make_sampler
from .sofa_objective import PAPER_ALPHA_BETA, SofaTerms, sofa_terms
from .space import SAMPLERS, SpaceError, SpaceFile, parse_space, read_space, space_names
from .study import StudyConfig, StudyResult, load_result, prepare, run_study


def load_space(name_or_path: str | Path, **workload: Any) -> Space:
    """A bundled space by name or a YAML file by path, validated and resolved against the real models;
    ``workload`` overrides fields of its ``workload`` block (``seq=16384``)."""
    f = read_space(name_or_path)
    if workload:
        f = parse_space({**f.model_dump(exclude={"base_dir"}),
                         "workload": {**f.workload.model_dump(), **workload}}, str(name_or_path), f.base_dir)
    return resolve(f)


def write_outputs(space: Space, result: StudyResult, out: Path, with_baseline: bool = True) -> dict[str, Path]:
    """Write a study's outputs (:mod:`~sparseattn.dse.outputs`)."""
    from .outputs import write_outputs as _write

    return _write(space, result, Path(out), with_baseline)


__all__ = [
    "OBJECTIVES",
    "PAPER_ALPHA_BETA",
    "SAMPLERS",
    "AccuracyTable",
    "Evaluator",
    "Measured",
    "Objective",
    "SofaTerms",
    "Space",
    "SpaceError",
    "SpaceFile",
    "StudyConfig",
    "StudyResult",
    "TrialOutcome",
    "TrialRecord",
    "evaluate_point",
    "load_result",
    "load_space",
    "make_sampler",
    "pareto_front",
    "parse_space",
    "prepare",
    "read_space",
    "resolve",
    "run_study",
    "sofa_terms",
    "space_names",
    "write_outputs",
]
