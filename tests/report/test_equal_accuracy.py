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


def test_the_readme_equal_accuracy_table_is_generated_from_the_committed_results():
    """The README's equal-accuracy table is what ``python benchmarks/bench_calibrate.py --docs-only`` makes of
    benchmarks/results/calibrate/bench_calibrate.json: a hand edit or a stale result fails here."""
    import json

    from sparseattn.report.calibration import BENCH_JSON, README, readme_table, readme_with_calibration_table

    data = json.loads(BENCH_JSON.read_text())
    readme = README.read_text()
    assert readme == readme_with_calibration_table(readme, data)
    for r in data["rows"]:  # every method's held-out density at every budget is in the README
        if r.get("measurable", True):
            assert f"{r['judge_density']:.3f}" in readme_table(data)
    data["rows"][0]["judge_density"] = 0.123456
    assert readme != readme_with_calibration_table(readme, data)


def test_a_readme_without_the_equal_accuracy_markers_is_refused():
    from sparseattn.report.calibration import readme_with_calibration_table

    with pytest.raises(ValueError, match="markers"):
        readme_with_calibration_table("# no table\n", {"rows": [], "config": {}})


def test_every_method_has_its_own_colour_and_marker_in_every_figure():
    """One home for a method's style (a3 and star_block once shared a colour in density_vs_budget): distinct
    colours across every registered method, and the same style whichever methods a figure shows."""
    from sparseattn.methods import method_names
    from sparseattn.report.figures import method_style

    styles = {m: method_style(m) for m in method_names()}
    colours = [tuple(c) for c, _ in styles.values()]
    assert len(set(colours)) == len(colours)
    assert method_style("a3") != method_style("star_block") and method_style("pade") == styles["pade"]


def test_the_calibration_table_says_why_budgets_share_a_setting_and_marks_unreached_rows():
    from sparseattn.report.calibration import calibration_markdown, calibration_notes

    rows = [_row("elsa", 0.01, 0.965, 0.0278, keep=0.9647), _row("elsa", 0.02, 0.965, 0.0278, keep=0.9647),
            _row("topk", 0.01, 0.005, 0.001, ratio=0.005), _row("topk", 0.02, 0.005, 0.001, ratio=0.005),
            _row("energon", 0.01, 0.984, -0.0369, reached=False, alpha2=-1.0),
            _row("energon", 0.02, 0.984, -0.0369, reached=False, alpha2=-1.0)]
    rows = [r.model_dump() for r in rows]  # the markdown reads the calibration's own rows (as the CLI writes them)
    notes = calibration_notes(rows)
    assert any(n.startswith("- elsa: the same setting at 1.0%, 2.0%") and "already over 2.0%" in n for n in notes)
    assert any(n.startswith("- topk: the same setting") and "sparsest end" in n for n in notes)
    assert "- energon at 1.0%, 2.0%: cannot reach." in notes  # one note for both budgets
    md = calibration_markdown(rows)
    assert md.count("n/a (unreached)") == 2 and "| energon | 1.0% | alpha2=-1 (unreached) |" in md
