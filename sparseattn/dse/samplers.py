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


def make_sampler(name: str, space: Space, seed: int, n_startup: int | None = None) -> optuna.samplers.BaseSampler:
    """The Optuna sampler ``name`` (one of :data:`~sparseattn.dse.space.SAMPLERS`) for ``space``."""
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
