"""The main job's progress: step i of n, unit i of n, and a time-left estimate that follows the machine's pace."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from sparseattn.job.progress import Status, StepPlan, Tracker, eta_text


class Clock:
    """A clock the test advances (the tracker reads time only through it)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _tracker(plan):
    seen: list[Status] = []
    clock = Clock()
    return Tracker(plan, seen.append, clock), seen, clock


def test_steps_and_units_are_counted_and_the_estimate_follows_the_pace():
    plan = [StepPlan("accuracy", "method", 3, 10.0, 5.0), StepPlan("hardware", "simulation", 2, 1.0),
            StepPlan("report", "part", 0, 0.0, 3.0)]
    tick, seen, clock = _tracker(plan)
    tick.begin("accuracy", "loading")
    assert (seen[-1].step, seen[-1].steps, seen[-1].unit, seen[-1].seconds_left) == (1, 3, 0, None)
    clock.now = 10.0  # loading took twice its nominal 5 s: this machine runs at half speed
    tick("dense")
    s = seen[-1]
    assert (s.unit, s.units, s.name) == (1, 3, "accuracy")
    assert s.seconds_left == 2.0 * (3 * 10.0 + 2 * 1.0 + 3.0)
    assert s.line().startswith("step 1 of 3 (accuracy), method 1 of 3: dense") and "min left" in s.line()
    tick("dense: oracle", unit=False)
    assert seen[-1].unit == 1
    clock.now = 20.0  # the first unit ran at nominal speed: pace (20 s for 15 nominal)
    tick("sofa")
    assert seen[-1].unit == 2
    assert abs(seen[-1].seconds_left - 20.0 / 15.0 * (2 * 10.0 + 2 * 1.0 + 3.0)) < 1e-9
    tick("pade")
    tick.begin("hardware")
    tick("a100")
    assert (seen[-1].step, seen[-1].unit, seen[-1].units) == (2, 1, 2)
    tick.begin("spatial")  # not in the plan: ignored
    assert seen[-1].name == "hardware"
    tick.begin("report", "writing")
    assert (seen[-1].step, seen[-1].unit) == (3, 0) and "step 3 of 3 (report): writing" in seen[-1].line()


@given(st.lists(st.tuples(st.integers(0, 20), st.floats(0.01, 100.0), st.floats(0.0, 10.0)), min_size=1,
                max_size=6), st.floats(0.001, 10.0))
def test_the_estimate_is_finite_non_negative_and_shrinks_at_a_steady_pace(steps, pace):
    plan = [StepPlan(f"s{i}", "unit", n, cost, fixed) for i, (n, cost, fixed) in enumerate(steps)]
    tick, seen, clock = _tracker(plan)
    for step in plan:
        tick.begin(step.name)
        clock.now += pace * step.fixed_s
        for u in range(step.units):
            tick(f"{step.name} {u}")
            clock.now += pace * step.unit_s
    left = [s.seconds_left for s in seen if s.seconds_left is not None]
    assert all(x >= 0 and x == x and x != float("inf") for x in left)
    assert all(b <= a * (1 + 1e-9) + 1e-9 for a, b in itertools.pairwise(left))
    for s in seen:
        assert 1 <= s.step <= len(plan) and 0 <= s.unit <= max(1, s.units)


def test_eta_text_rounds_as_an_estimate_deserves():
    assert eta_text(None) == "estimating the time left"
    assert eta_text(12.0) == "about 10 s left"
    assert eta_text(1.0) == "about 5 s left"
    assert eta_text(250.0) == "about 4 min left"
    assert eta_text(7200.0) == "about 2.0 h left"
    assert eta_text(float("nan")) == "estimating the time left"
