"""Calibration to a loss budget: the search finds a monotone knob's boundary within its tolerance, an unreachable
budget is reported with its closest point, the judgement text is never searched on, and the cache resumes."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from sparseattn.core import InvalidParameterError
from sparseattn.eval.calibrate import (
    DecoderScorer,
    calibrate_method,
    knob_coordinate,
    knob_value,
    search,
    window_scorer,
)
from sparseattn.methods import Knob, get_method, knobs_of, method_names, parse_params
from sparseattn.models import LoadedModel

TOL = 1 / 32
LAYERS = [0, 5, 10, 15, 20, 25]  # every fifth layer of SmolLM2 sparse: the search is the same, six times cheaper


# ------------------------------------------------------------------------------------------------ the search
@given(st.floats(0.0, 1.0), st.floats(0.2, 5.0), st.floats(1e-3, 2.0), st.floats(0.0, 0.5))
def test_search_finds_a_monotone_boundary_within_tolerance(crossing, power, scale, floor):
    """loss(t) rises monotonically, crossing the budget at ``crossing``; the answer lies within tol below it."""
    budget = floor + scale * crossing**power

    def loss(t: float) -> float:
        return floor + scale * t**power

    (found,) = search(loss, [budget], TOL)
    assert found.reached and loss(found.t) <= budget
    true = 1.0 if loss(1.0) <= budget else crossing
    assert found.t <= true + 1e-12 and true - found.t <= TOL + 1e-12


@given(st.floats(0.01, 10.0))
def test_search_reports_an_unreachable_budget_with_its_closest_point(offset):
    (found,) = search(lambda t: offset + t, [offset / 2], TOL)
    assert not found.reached and found.closest == 0.0 and found.loss == offset and found.evaluations == 1


def test_budgets_share_measurements():
    calls = []

    def loss(t):
        calls.append(t)
        return t

    a, b = search(loss, [0.3, 0.6], TOL)
    # each point measured once; the larger budget is searched first, so the smaller one's count is the total
    assert len(calls) == len(set(calls)) == a.evaluations > b.evaluations
    assert a.t <= 0.3 < a.t + TOL + 1e-12 and b.t <= 0.6 < b.t + TOL + 1e-12


def test_a_steep_bracket_is_bisected_until_its_density_is_resolved():
    """The loss crosses +1% and +2% inside one tol-wide step (threshold delta on SmolLM2 did: +0.8% -> +3.0%), so a
    search stopping at tol gives both budgets one setting; given densities it resolves each budget's own."""
    def loss(t: float) -> float:
        return 0.005 + max(0.0, t - 0.8)

    a, b = search(loss, [0.01, 0.02], TOL, density_at=lambda t: 1.0 - t, density_tol=0.005)
    assert loss(a.t) <= 0.01 and loss(b.t) <= 0.02
    assert a.t < b.t  # two budgets, two settings
    assert 0.805 - a.t <= 0.005 and 0.815 - b.t <= 0.005  # within density_tol (density = 1 - t) of each crossing


@given(st.floats(0.05, 0.95), st.floats(1e-3, 0.05))
def test_the_answer_is_within_density_tolerance_of_the_crossing(crossing, dtol):
    (found,) = search(lambda t: t, [crossing], TOL, density_at=lambda t: 1.0 - t, density_tol=dtol)
    assert found.t <= crossing and crossing - found.t <= max(dtol, 1 / 256) + 1e-12


def test_a_non_monotone_loss_uses_every_point_measured():
    """Over budget at the densest end, on budget a little sparser (PADE at its largest radius on SmolLM2): the
    points the larger budget measured reach the smaller one, which is not reported unreachable."""
    def loss(t: float) -> float:
        return 0.0175 if t == 0.0 else -0.02 + 0.05 * t

    a, b = search(loss, [0.01, 0.02], TOL)
    assert a.reached and loss(a.t) <= 0.01 and 0.6 - a.t <= TOL + 1e-12
    assert b.reached and loss(b.t) <= 0.02 and 0.8 - b.t <= TOL + 1e-12
    (alone,) = search(lambda t: 0.0175 if t == 0.0 else 0.0175 + t, [0.01], TOL)  # nothing on budget anywhere
    assert not alone.reached


def test_a_nan_loss_is_an_error():
    with pytest.raises(InvalidParameterError, match="NaN"):
        search(lambda t: math.nan, [0.1])


# ------------------------------------------------------------------------------------------------ knobs
@given(st.floats(0.0, 1.0))
def test_knob_coordinates_are_monotone_and_invert(t):
    for name in method_names():
        for knob in get_method(name).knobs:
            x = knob_value(knob, t)
            slack = 1e-3 * max(abs(knob.low), abs(knob.high))  # the 4-digit rounding
            assert knob.low - slack <= x <= knob.high + slack
            back = knob_coordinate(knob, min(max(x, knob.low), knob.high))
            assert abs(back - t) < 2e-3  # up to the 4-digit rounding


def test_every_sparse_method_declares_a_valid_knob():
    skip = {"dense", "dense_int8", "star_gpu"}  # nothing to calibrate; star_gpu is star_block on a GPU
    for name in method_names():
        if name in skip:
            continue
        knobs = knobs_of(name)
        for knob in knobs:
            assert isinstance(knob, Knob) and knob.source
            for value in (knob.low, knob.high, *knob.grid):  # the whole range is a valid parameter value
                parse_params(name, {knob.name: value})
        densest, sparsest = knob_value(knobs[0], 0.0), knob_value(knobs[0], 1.0)
        assert (densest > sparsest) == (knobs[0].denser == "up")
    with pytest.raises(InvalidParameterError, match="no density knob"):
        knobs_of("dense")


def test_a_bad_knob_declaration_is_refused():
    with pytest.raises(ValueError, match="low < high"):
        Knob("x", 1.0, 0.5, "up")
    with pytest.raises(ValueError, match="log knob"):
        Knob("x", 0.0, 1.0, "up", "log")
    with pytest.raises(ValueError, match="grid"):
        Knob("x", 0.0, 1.0, "up", grid=(2.0,))


# ------------------------------------------------------------------------------------------------ on a model
def _tiny_llama() -> LoadedModel:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                         num_attention_heads=4, num_key_value_heads=2, head_dim=8,
                                         max_position_embeddings=128))
    return LoadedModel(name="tiny-llama", model=model.eval(), tokenizer=None)


def _ids(seed: int) -> torch.Tensor:
    return torch.randint(0, 64, (1, 64), generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def tiny():
    torch.set_grad_enabled(False)
    return _tiny_llama()


def test_a_monotone_knob_is_found_within_tolerance_on_a_small_model(smollm, tmp_path):
    """SmolLM2-135M over 64 tokens: calibrated on SOTU, judged on Moby-Dick. Top-k's default floor of 16 keys holds
    a 64-token causal window at density 0.43 whatever the ratio, so the floor is held at 2 keys: the ratio moves."""
    calib = window_scorer(smollm, "sotu", 64, LAYERS, cache_dir=tmp_path)
    judge = window_scorer(smollm, "moby-dick", 64, LAYERS, cache_dir=tmp_path)
    knob = knobs_of("topk")[0]
    sparsest = calib.measure("topk", {"ratio": knob_value(knob, 1.0), "min_keys": 2}).loss
    assert sparsest > 0  # the budget below is crossed inside the range
    budget = sparsest / 2
    seen = []
    (row,) = calibrate_method("topk", calib, judge, [budget], TOL, fixed={"min_keys": 2},
                              on_point=lambda m, p: seen.append(p))
    assert row.reached and row.calib_loss <= budget
    t = knob_coordinate(knob, row.params["ratio"])
    # a measured point at most tol sparser is over the budget: the boundary is bracketed within tol
    over = [knob_coordinate(knob, p.params["ratio"]) for p in seen if p.loss > budget]
    assert any(t < u <= t + TOL + 1e-3 for u in over)
    assert row.evaluations == len({p.params["ratio"] for p in seen})
    # judged on the other window: its own loss and density at the same setting
    judged = judge.measure("topk", row.params)
    assert (row.judge_loss, row.judge_density) == (judged.loss, judged.density)
    assert row.gap == pytest.approx(row.judge_loss - row.calib_loss)


def test_an_unreachable_budget_is_reported_with_its_closest_point(smollm, tmp_path):
    calib = window_scorer(smollm, "sotu", 64, LAYERS, cache_dir=tmp_path)
    judge = window_scorer(smollm, "moby-dick", 64, LAYERS, cache_dir=tmp_path)
    seen = []
    # SpAtten with half its heads pruned loses accuracy at every token_keep: a budget of 1e-4 is out of reach
    (row,) = calibrate_method("spatten", calib, judge, [1e-4], TOL, fixed={"head_keep": 0.5},
                              on_point=lambda m, p: seen.append(p))
    assert not row.reached and "cannot reach" in row.note
    assert row.calib_loss == min(p.loss for p in seen) > 1e-4
    assert row.params["head_keep"] == 0.5


def test_a_knob_that_moves_nothing_is_not_measurable(tiny, tmp_path):
    """Block top-k on a 64-token window with 64-token blocks: one key block per row, always kept, at any ratio --
    reported not measurable there, not as a calibrated ratio."""
    calib = DecoderScorer(tiny, [_ids(1)], "calib", cache_dir=tmp_path)
    judge = DecoderScorer(tiny, [_ids(2)], "judge", cache_dir=tmp_path)
    rows = calibrate_method("block_topk", calib, judge, [0.01, 0.02], TOL)
    for r in rows:
        assert not r.reached and not r.measurable and r.judged_on_budget is None
        assert r.calib_density == 1.0 and "not measurable at this window" in r.note and "block_size" in r.note


def test_an_unreached_budget_is_not_on_budget_when_judged():
    """Energon's closest point was +3.9% on the calibration text and -3.7% judged: an unreached budget has no
    calibrated setting, so 'on budget when judged' does not apply to it (it is not 'yes')."""
    from sparseattn.eval.calibrate.runner import CalibrationRow

    common = dict(model="m", kind="decoder", method="energon", budget=0.01, params={"alpha2": -1.0},
                  calib_text="sotu", calib_loss=0.039, calib_density=0.98, judge_text="moby-dick", judge_loss=-0.037,
                  judge_density=0.98, evaluations=2, seconds=1.0)
    assert CalibrationRow(reached=False, **common).judged_on_budget is None
    assert CalibrationRow(reached=False, **common).to_dict()["judged_on_budget"] is None
    assert CalibrationRow(reached=True, **common).judged_on_budget is True


def test_calibration_never_measures_on_the_judgement_text(tiny, tmp_path):
    calib = DecoderScorer(tiny, [_ids(1)], "calib", cache_dir=tmp_path / "c")
    judge = DecoderScorer(tiny, [_ids(2)], "judge", cache_dir=tmp_path / "j")
    rows = calibrate_method("threshold", calib, judge, [0.001, 0.004], TOL)
    judged = {f.name for f in (tmp_path / "j").rglob("*.json")}
    # the judgement window holds only dense and the chosen settings, the calibration window the whole search
    assert len(judged) == 1 + len({r.params["delta"] for r in rows})
    assert len(list((tmp_path / "c").rglob("*.json"))) == 1 + rows[0].evaluations
    with pytest.raises(InvalidParameterError, match="same text"):
        calibrate_method("threshold", calib, calib, [0.01])


def test_a_rerun_is_served_from_the_cache(tiny, tmp_path):
    calib = DecoderScorer(tiny, [_ids(1)], "calib", cache_dir=tmp_path)
    judge = DecoderScorer(tiny, [_ids(2)], "judge", cache_dir=tmp_path)
    first = calibrate_method("sofa", calib, judge, [0.002], TOL)
    seen = []
    again = calibrate_method("sofa", calib, judge, [0.002], TOL, on_point=lambda m, p: seen.append(p.cached))
    assert seen and all(seen)
    assert [r.params for r in again] == [r.params for r in first]
    assert [r.judge_loss for r in again] == [r.judge_loss for r in first]


def test_bad_budgets_and_knob_clashes_are_refused(tiny, tmp_path):
    calib = DecoderScorer(tiny, [_ids(1)], "calib", cache_dir=tmp_path)
    judge = DecoderScorer(tiny, [_ids(2)], "judge", cache_dir=tmp_path)
    with pytest.raises(InvalidParameterError, match="budgets"):
        calibrate_method("topk", calib, judge, [1.5])
    with pytest.raises(InvalidParameterError, match="calibrated knob"):
        calibrate_method("topk", calib, judge, [0.01], fixed={"ratio": 0.5})
    with pytest.raises(InvalidParameterError, match="no density knob"):
        calibrate_method("dense", calib, judge, [0.01])


def test_an_encoder_is_calibrated_on_embedding_cosine(tmp_path):
    """MiniLM (a BERT): the loss is 1 - cosine to the dense embeddings, so a 0.02 budget is cosine 0.98."""
    from sparseattn.models import load_model

    enc = load_model("minilm-l6")
    calib = window_scorer(enc, "sotu", 64, passages_per_text=2, cache_dir=tmp_path)
    judge = window_scorer(enc, "moby-dick", 64, passages_per_text=2, cache_dir=tmp_path)
    assert calib.kind == "encoder" and calib.dense_metric == 1.0
    (row,) = calibrate_method("topk", calib, judge, [0.02], TOL)
    assert row.kind == "encoder" and row.reached and row.calib_loss <= 0.02
    assert 0 < row.calib_density < 1 and 0 <= row.judge_loss < 1


def test_notes_say_when_only_the_densest_end_is_on_budget_and_when_the_loss_is_not_monotone():
    from sparseattn.eval.calibrate.runner import _dense_end_note, _non_monotone_note
    from sparseattn.eval.calibrate.scorer import Point

    knob = knobs_of("pade")[0]
    dense = Point("pade", {"radius": 64.0}, 0.0175, 0.998, 1.0, 1.0)
    sparse = Point("pade", {"radius": 7.025}, 0.0111, 0.205, 1.0, 1.0)
    note = _non_monotone_note(knob, 0.015, {0.0: dense, 0.8: sparse})
    assert "not monotone" in note and "radius=64" in note and "+0.0175" in note
    assert _non_monotone_note(knob, 0.02, {0.0: dense, 0.8: sparse}) == ""  # densest end on budget: nothing odd
    keep = knobs_of("dota")[0]
    on = Point("dota", {"keep": 1.0}, 0.0, 1.0, 1.0, 1.0)
    over = Point("dota", {"keep": 0.866}, 0.0833, 0.875, 1.0, 1.0)
    note = _dense_end_note(keep, on, {0.0: on, 1 / 32: over, 0.5: over})
    assert "only the densest end" in note and "keep=0.866" in note and "0.875" in note
