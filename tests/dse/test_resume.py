"""Resume: a study killed mid-way (the driver subprocess terminated) resumes from its SQLite file; no finished
trial is lost or repeated, and a trial the dead driver left running is evaluated again."""

from __future__ import annotations

import subprocess
import sys
import time

import optuna
import pytest
from optuna.trial import TrialState

from sparseattn.dse import StudyConfig, load_space, run_study

from .conftest import TILING, write_space

N_TRIALS = 20
KILL_AFTER = 6


def finished(storage: str, name: str) -> dict[int, tuple[str, dict, tuple]]:
    """Finished trials: number -> (state, point, values)."""
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        return {}
    return {t.number: (t.state.name, t.user_attrs["dse"]["point"], tuple(t.values or ()))
            for t in study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))}


def start_driver(space_file, storage: str) -> subprocess.Popen:
    cmd = [sys.executable, "-c", "from sparseattn.cli import main; main()", "dse", "run", str(space_file),
           "--sampler", "grid", "--n-trials", str(N_TRIALS), "--storage", storage, "--study", "resume",
           "--workers", "1", "--no-progress", "--out", str(space_file.parent / "out")]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.mark.parametrize("stop", ["kill", pytest.param("terminate", marks=pytest.mark.slow)])
def test_killed_study_resumes_without_losing_or_repeating(tmp_path, stop):
    space_file = write_space(tmp_path, TILING)
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    proc = start_driver(space_file, storage)
    deadline = time.monotonic() + 120
    while len(finished(storage, "resume")) < KILL_AFTER:
        assert proc.poll() is None, f"the driver ended early: {proc.stderr.read().decode()[-2000:]}"
        assert time.monotonic() < deadline, "the driver made no progress"
        time.sleep(0.1)
    getattr(proc, stop)()  # SIGKILL: no chance to clean up; SIGTERM: the driver requeues its own trial
    proc.wait(timeout=60)  # reaped, so its pid is gone
    before = finished(storage, "resume")
    assert KILL_AFTER <= len(before) < N_TRIALS

    result = run_study(load_space(space_file), StudyConfig(sampler="grid", n_trials=N_TRIALS, storage=storage,
                                                           study_name="resume", workers=1, progress=False))
    after = finished(storage, "resume")
    assert {n: after[n] for n in before} == before  # nothing finished was lost or changed
    assert len(after) == N_TRIALS
    points = [repr(sorted(p.items())) for _, p, _ in after.values()]
    assert len(set(points)) == N_TRIALS  # nothing repeated: distinct grid points
    assert all(r.duplicate_of is None for r in result.records)
    assert result.evaluated == N_TRIALS - len(before)
    study = optuna.load_study(study_name="resume", storage=storage)
    left = [t for t in study.get_trials() if t.state == TrialState.FAIL]  # a trial interrupted mid-way, if any
    for t in left:
        if not t.user_attrs["requeued"]:  # stopped before a point was chosen: nothing to retry, nothing lost
            assert t.params == {} and "grid_id" not in t.system_attrs
            continue
        retried = [u for u in study.get_trials() if u.user_attrs.get("retry_of") == t.number]
        assert len(retried) == 1 and retried[0].state in (TrialState.COMPLETE, TrialState.PRUNED)
        assert t.params.items() <= retried[0].params.items()  # a trial killed mid-ask may hold part of its point
    assert not study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING))


@pytest.mark.parametrize("other_host", [False, True])
def test_a_trial_left_untagged_by_a_killed_driver_is_requeued(other_host):
    """A driver killed between asking a trial and tagging it leaves an untagged running trial: it is requeued when
    every registered driver ran here and is gone, and left alone when a driver on another host might own it."""
    from sparseattn.dse.study import _driver_id, recover_stale, register_driver

    study = optuna.create_study()
    dead = {**_driver_id(), "pid": 2**22 + 12345, "token": "dead"}  # no such process
    if other_host:
        dead["host"] = "elsewhere"
    register_driver(study, dead)
    trial = study.ask({"x": optuna.distributions.IntDistribution(0, 9)})
    stale = recover_stale(study, _driver_id(), {"x"})
    if other_host:
        assert stale == [] and study.get_trials(states=(TrialState.RUNNING,))
    else:
        assert stale == [trial.number]
        assert study.get_trials(states=(TrialState.WAITING,))[0].user_attrs["retry_of"] == trial.number


def _dead_driver(study) -> None:
    from sparseattn.dse.study import _driver_id, register_driver

    register_driver(study, {**_driver_id(), "pid": 2**22 + 12345, "token": "dead"})


def test_a_grid_trial_killed_before_its_parameters_is_requeued_with_its_grid_point(small_space):
    """Killed after the grid sampler assigned a point but before any parameter was suggested: requeueing the empty
    point made the next ask fail ("All parameters must be specified ... GridSampler with enqueue_trial"); the point
    is recovered from the trial's grid id, and the grid is still covered exactly once."""
    from sparseattn.dse.samplers import make_sampler
    from sparseattn.dse.study import _driver_id, recover_stale

    study = optuna.create_study(sampler=make_sampler("grid", small_space, 0), directions=["minimize"] * 2)
    _dead_driver(study)
    bare = study.ask()  # grid id assigned, no parameter suggested yet
    assert bare.params == {}
    dists = small_space.distributions()
    assert recover_stale(study, _driver_id(), set(dists)) == [bare.number]
    points = set()
    for _ in range(small_space.grid_size()):
        trial = study.ask(dists)
        points.add(tuple(sorted(trial.params.items())))
        study.tell(trial, [1.0, 1.0])
    assert len(points) == small_space.grid_size() == 16


def test_a_trial_killed_before_any_point_was_chosen_is_failed_not_queued(small_space):
    from sparseattn.dse.samplers import make_sampler
    from sparseattn.dse.study import _driver_id, recover_stale

    study = optuna.create_study(sampler=make_sampler("tpe", small_space, 0), directions=["minimize"] * 2)
    _dead_driver(study)
    bare = study.ask()
    assert recover_stale(study, _driver_id(), set(small_space.distributions())) == [bare.number]
    failed = study.get_trials(states=(TrialState.FAIL,))[0]
    assert failed.number == bare.number and failed.user_attrs["requeued"] is False
    assert not study.get_trials(states=(TrialState.WAITING,))  # nothing partial queued
    study.tell(study.ask(small_space.distributions()), [1.0, 1.0])  # and the next ask works


def test_a_resumed_random_study_draws_new_points(tmp_path):
    """Stopped after 8 of 24 trials, a random study resumed with the same seed used to draw its first 8 points
    again; it now reaches as many distinct points as an uninterrupted run does (up to sampling luck)."""
    space_file = write_space(tmp_path, TILING)
    space = load_space(space_file)

    def run(storage: str, n: int) -> None:
        run_study(space, StudyConfig(sampler="random", n_trials=n, storage=storage, study_name="r", workers=1,
                                     progress=False))

    def distinct(storage: str) -> int:
        return len({repr(sorted(p.items())) for _, p, _ in finished(storage, "r").values()})

    resumed, whole = f"sqlite:///{tmp_path / 'resumed.db'}", f"sqlite:///{tmp_path / 'whole.db'}"
    run(resumed, 8)
    run(resumed, 24)
    run(whole, 24)
    assert distinct(resumed) >= distinct(whole) - 3
    assert distinct(resumed) > 16  # the old behaviour: 8 repeats at most 16 distinct points
