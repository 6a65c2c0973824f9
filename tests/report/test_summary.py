"""The report's first screen and the terminal's summary, from results: pure functions on result rows (the rows are
data in the shape the job stores; the end-to-end report is checked on a real quick run in test_job.py)."""

from __future__ import annotations

import io
import itertools

from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from sparseattn.report.figures import group_labels
from sparseattn.report.render import dominated_by
from sparseattn.report.summary import accuracy_front, is_oracle
from sparseattn.report.tables import coinciding_targets

from .rowfactory import accuracy, calibration, hardware, view

METHODS = ["sofa", "star", "pade", "sanger", "dota", "energon", "elsa", "a3", "spatten", "star_block", "topk"]


def _row(density: float, change: float):
    return accuracy(density, change)


@given(st.dictionaries(st.sampled_from(METHODS), st.tuples(st.floats(0.01, 1.0), st.floats(-0.1, 10.0)),
                       min_size=1))
def test_the_accuracy_front_is_the_most_accurate_method_at_each_density(points):
    acc = {m: _row(d, c) for m, (d, c) in points.items()}
    front = accuracy_front(acc)
    names = [m for m, _ in front]
    assert not any(is_oracle(m) for m in names) and "topk" not in names
    assert all(a[1].density <= b[1].density and a[1].ppl_change > b[1].ppl_change
               for a, b in itertools.pairwise(front))
    for m, r in acc.items():  # every practical method is matched or beaten by a front member at its density or below
        if not is_oracle(m):
            assert any(f.density <= r.density and f.ppl_change <= r.ppl_change for _, f in front)


def test_a_trial_is_best_only_when_the_default_does_not_dominate_it():
    objs = ["latency_ms", "dram_mb"]
    base = {"latency_ms": 10.0, "dram_mb": 100.0}
    assert dominated_by(base, {"latency_ms": 11.0, "dram_mb": 100.0}, objs)
    assert not dominated_by(base, {"latency_ms": 9.0, "dram_mb": 120.0}, objs)  # a trade-off: not dominated
    assert not dominated_by(base, dict(base), objs)  # equal: not dominated either


def test_coinciding_sweep_targets_are_named():
    rows = [{"text": "sotu", "method": "block_topk", "target_density": 0.1, "density": 0.1801},
            {"text": "sotu", "method": "block_topk", "target_density": 0.05, "density": 0.1799},
            {"text": "sotu", "method": "topk", "target_density": 0.1, "density": 0.1},
            {"text": "sotu", "method": "topk", "target_density": 0.05, "density": 0.05},
            {"text": "sotu", "method": "dense", "target_density": None, "density": 1.0}]
    (note,) = coinciding_targets(rows)
    assert "block_topk on sotu: targets 0.10 and 0.05 land on the same density, 0.180" in note


def test_methods_at_the_same_point_share_one_label():
    labels = group_labels({"sofa": (0.25, 7.23), "star": (0.25, 7.23), "pade": (0.04, 37.7)})
    assert sorted(labels.values()) == ["pade", "sofa = star"]


def test_the_terminal_summary_fits_80_columns_without_cutting(tmp_path):
    from sparseattn.cli.run_cmd import summary_table
    from sparseattn.job.config import RunConfig
    from sparseattn.job.store import ResultStore

    store = ResultStore(tmp_path, RunConfig())
    store.put("accuracy", "dense", accuracy(1.0, None, ppl=60.0))
    for i, m in enumerate(METHODS):
        store.put("accuracy", m, _row(0.0123 + i / 20, 7.2946 * (i + 1)))
    for gpu in ("h100", "a100"):
        store.put("hardware", f"{gpu}@decoder", hardware(gpu, "dense", 1.0, 100.0))
    store.put("hardware", "star_block@decoder", hardware("star_block", "star_block", 163.5, 1.53))
    out = io.StringIO()
    Console(file=out, width=80).print(summary_table(store))
    text = out.getvalue()
    assert max(len(line) for line in text.splitlines()) <= 80 and "…" not in text
    for m in METHODS:
        assert m in text
    assert "0.00612x" in text and "65.4x" in text and "+729.5%" in text and "vs H100" in text


def test_the_summary_names_the_method_that_keeps_fewest_pairs_at_each_loss_budget(tmp_path):
    from sparseattn.job.config import RunConfig
    from sparseattn.report.summary import which_method_per_budget

    assert which_method_per_budget(view(tmp_path, RunConfig())) == ""  # no calibration step: nothing said
    rows = [calibration(m, b, d, loss) for m, b, d, loss in [("sofa", 0.01, 0.30, 0.008), ("pade", 0.01, 0.20, 0.012),
                                                            ("sanger", 0.01, 0.25, 0.009), ("pade", 0.05, 0.10, 0.04)]]
    cal = {m: [r for r in rows if r.method == m] for m in ("sofa", "pade", "sanger")}
    text = which_method_per_budget(view(tmp_path, RunConfig(), calibration=cal))
    assert "within +1.0%: <b>sanger</b> at density 0.250" in text  # pade is lower but off budget when judged
    assert "within +5.0%: <b>pade</b> at density 0.100" in text


def test_the_encoder_reads_the_runs_own_text_or_says_why_not(tmp_path):
    from sparseattn.eval import load_text
    from sparseattn.job.config import RunConfig
    from sparseattn.job.steps.encoder import encoder_texts
    from sparseattn.models import load_model

    enc = load_model("minilm-l6")
    mine = tmp_path / "mine.txt"
    mine.write_text(load_text("sotu")[:30000])
    short = tmp_path / "short.txt"
    short.write_text(load_text("sotu")[:3000])
    assert encoder_texts(RunConfig(), enc) == (None, ["moby-dick", "sotu"], "")
    texts, labels, why = encoder_texts(RunConfig(text=str(mine), passages=2, encoder_tokens=128), enc)
    assert texts == [str(mine)] and labels == [str(mine)] and why == ""
    texts, labels, why = encoder_texts(RunConfig(text=str(short), passages=8, encoder_tokens=256), enc)
    assert texts is None and labels == ["moby-dick", "sotu"]
    assert "short.txt has" in why and "too few for 8 passages of 256" in why and "bundled texts" in why


@given(st.floats(1e-4, 1e9))
def test_one_number_format_three_significant_digits_without_an_exponent(x):
    from sparseattn.report.html import significant

    text = significant(x)
    assert "e" not in text
    assert abs(float(text.replace(",", "")) - x) <= 0.005 * x + 0.5 * (x >= 100)


def test_significant_examples():
    from sparseattn.report.html import significant

    assert [significant(v) for v in (0.000385, 0.0537, 2.0, 4.561, 115.2, 1090.4, 4580.0)] == [
        "0.000385", "0.0537", "2.00", "4.56", "115", "1,090", "4,580"]
