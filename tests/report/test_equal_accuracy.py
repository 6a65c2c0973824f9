"""The equal-accuracy table and figure read the calibration step's rows: each design at each budget beside the
oracles at the same budget, EDP = latency x energy, an unreached budget marked, the layer most unlike the oracle."""

from __future__ import annotations

import pytest

from sparseattn.core.errors import InvalidParameterError
from sparseattn.job.config import RunConfig, load_config
from sparseattn.job.steps.calibration import calibrated_methods, calibration_unit_s
from sparseattn.report.equal_accuracy import equal_accuracy_rows, equal_accuracy_section, plot_density_vs_budget

from .rowfactory import calibration as _row
from .rowfactory import hardware, view


@pytest.fixture
def store(tmp_path):
    cal = {
        "topk": [_row("topk", 0.01, 0.5, 0.009, ratio=0.5), _row("topk", 0.02, 0.4, 0.018, ratio=0.4)],
        "threshold": [_row("threshold", 0.01, 0.3, 0.01, layers={0: 0.3, 1: 0.3}, delta=7.0),
                      _row("threshold", 0.02, 0.2, 0.02, layers={0: 0.2, 1: 0.2}, delta=6.0)],
        "pade": [_row("pade", 0.01, 0.9, 0.03, reached=False, layers={0: 0.9, 1: 0.5}, radius=64.0, alpha=0.6),
                 _row("pade", 0.02, 0.25, 0.015, layers={0: 0.1, 1: 0.4}, radius=9.0, alpha=0.5)]}
    hw = {"pade@0.02": hardware("pade", "pade", 2.0, 3.0, budget=0.02),
          "pade@0.01": hardware("pade", "pade", 4.0, 5.0, budget=0.01)}
    return view(tmp_path, RunConfig(methods=["topk", "threshold", "pade", "dense"]), calibration=cal,
                calibration_hw=hw)


def test_rows_pair_each_design_with_the_oracles_at_its_budget(store):
    rows = {(r.method, r.budget): r for r in equal_accuracy_rows(store)}
    pade = rows[("pade", 0.02)]
    assert pade.arch == "pade" and pade.edp == pytest.approx(6.0)
    assert (pade.topk_density, pade.threshold_density) == (0.4, 0.2)
    assert (pade.layer, pade.layer_density, pade.layer_oracle_density) == (1, 0.4, 0.2)  # the larger gap
    assert rows[("topk", 0.01)].arch is None and rows[("topk", 0.01)].edp is None
    assert not rows[("pade", 0.01)].reached


def test_the_section_and_figure_are_written(store, tmp_path):
    path = plot_density_vs_budget(store, tmp_path / "fig.png")
    assert path.is_file() and path.with_suffix(".svg").is_file()
    html = equal_accuracy_section(store, {"calibrate": path})
    assert "radius=64, alpha=0.6 (unreached)" in html and "moby-dick" in html and "<img" in html
    assert equal_accuracy_section(view(tmp_path / "x", RunConfig()), {}) == "<p>not run</p>"


def test_the_job_calibrates_only_methods_with_a_knob_and_judges_on_another_text(tmp_path):
    cfg = RunConfig(methods=["dense", "topk", "pade"])
    assert calibrated_methods(cfg) == ["topk", "pade"] and calibration_unit_s(cfg) > 0
    assert calibration_unit_s(RunConfig(budgets=[])) == 0.0
    with pytest.raises(InvalidParameterError, match="different text"):
        load_config(None, {"text": "sotu"})  # calib_text is sotu too
    with pytest.raises(InvalidParameterError, match="budgets"):
        load_config(None, {"budgets": [0.0]})
    assert load_config(None, {"text": "sotu", "budgets": []}).budgets == []  # no calibration: any text
