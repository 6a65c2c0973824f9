"""On a small space where a grid is affordable (160 points: q tile x k tile x double buffering of STAR on
Llama2-7B at 4k tokens), the Bayesian samplers find a configuration within 2 % of the grid optimum's latency
using at most 15 % of the grid's evaluations (24 trials, 5 of them random start-up trials).

Measured over seeds 0-7 (24 trials each): TPE within 2 % for 7 of 8 seeds (seed 6 stops at +22 %); the GP for 6 of
8 (seeds 5 and 6 stop at +10 % and +4 %). The tests fix seed 0 (TPE: the optimum itself; GP: the optimum too).
"""

from __future__ import annotations

import pytest

from sparseattn.dse import StudyConfig, run_study

BUDGET = 0.15
GAP = 0.02


def best_latency(space, sampler: str, n_trials: int, seed: int = 0):
    cfg = StudyConfig(sampler=sampler, n_trials=n_trials, seed=seed, n_startup=5, storage="memory",
                      study_name=sampler, workers=1, progress=False)
    result = run_study(space, cfg)
    return result.best[0].objectives["latency_ms"], result


@pytest.fixture(scope="module")
def grid_optimum():
    from .conftest import TILING, space_of

    space = space_of(TILING)
    assert space.grid_size() == 160
    value, result = best_latency(space, "grid", 10_000)
    assert len(result.records) == 160 and result.evaluated == 160
    assert result.best[0].point == {"q_tile": 128, "k_tile": 96, "double_buffered": True}
    return value


@pytest.mark.parametrize("sampler", ["tpe", pytest.param("gp", marks=pytest.mark.slow)])
def test_bayesian_sampler_finds_the_grid_optimum_with_a_fraction_of_the_evaluations(tiling_space, grid_optimum,
                                                                                    sampler):
    n_trials = int(BUDGET * tiling_space.grid_size())
    value, result = best_latency(tiling_space, sampler, n_trials)
    assert len(result.records) == n_trials == 24
    assert result.evaluated <= n_trials
    assert value <= grid_optimum * (1 + GAP), f"{sampler}: {value:.2f} ms vs the grid's {grid_optimum:.2f} ms"
