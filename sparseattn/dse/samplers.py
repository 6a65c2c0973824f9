"""Samplers: Optuna's own, by name. Nothing here samples by hand.

* ``tpe`` -- ``TPESampler(multivariate=True)`` (Bayesian: tree-structured Parzen estimators);
* ``gp`` -- ``GPSampler`` (Bayesian: a Gaussian-process surrogate with a Matern-5/2 kernel and log expected
  improvement, as SOFA's Algorithm 1 describes; needs scipy, uses torch); the simulator is deterministic, so
  ``deterministic_objective=True``;
* ``grid`` -- ``GridSampler`` over every value of every parameter (ranges need a ``step``);
* ``random`` -- ``RandomSampler``.

All of them honour the constraint values a trial reports (``Trial.set_constraint``) where Optuna supports it
(TPE and GP), and take multi-objective studies. ``n_startup`` is the number of random trials TPE and the GP
take before they model (Optuna's default 10).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import optuna

from .resolve import Space
from .space import SAMPLERS, SpaceError


class AskTellGridSampler(optuna.samplers.GridSampler):
    """Optuna's grid sampler, less its ``study.stop()`` once every grid point is done: that call only works inside
    ``study.optimize``, and the driver, which asks and tells, stops at the grid's size itself."""

    def after_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial, state: optuna.trial.TrialState,
                    values: Sequence[float] | None) -> None:
        pass

    def grid_point(self, trial: optuna.trial.FrozenTrial) -> dict[str, object] | None:
        """The grid point assigned to ``trial`` (``None`` if it has none): a trial can be assigned its point and
        stopped before its parameters are suggested (a driver killed mid-``ask``), and the point is not lost."""
        grid_id = trial.system_attrs.get("grid_id")
        if grid_id is None or not self._same_search_space(trial.system_attrs.get("search_space", {})):
            return None
        return dict(zip(self._param_names, self._all_grids[grid_id], strict=True))


def resume_seed(seed: int, n_trials: int) -> int:
    """The seed of a driver that finds ``n_trials`` trials in its study: ``seed`` itself for a new study (same
    seed, same trials), a seed drawn from the study's state for a resumed one, so a resumed random or Bayesian
    study draws new points instead of repeating the first ``n_trials`` of its sequence."""
    return seed if n_trials == 0 else (seed * 1_000_003 + n_trials) % 2**32


def make_sampler(name: str, space: Space, seed: int, n_startup: int | None = None,
                 n_trials: int = 0) -> optuna.samplers.BaseSampler:
    """The Optuna sampler ``name`` (one of :data:`~sparseattn.dse.space.SAMPLERS`) for ``space``; a study that
    already holds ``n_trials`` trials reseeds (:func:`resume_seed`), except the grid, whose order is its seed's."""
    if name != "grid":
        seed = resume_seed(seed, n_trials)
    startup = {} if n_startup is None else {"n_startup_trials": n_startup}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if name == "tpe":
            return optuna.samplers.TPESampler(seed=seed, multivariate=True, **startup)
        if name == "gp":
            return optuna.samplers.GPSampler(seed=seed, deterministic_objective=True, **startup)
        if name == "grid":
            return AskTellGridSampler(space.grid(), seed=seed)
        if name == "random":
            return optuna.samplers.RandomSampler(seed=seed)
    raise SpaceError(f"unknown sampler {name!r}; available: {', '.join(SAMPLERS)}")
