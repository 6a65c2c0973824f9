import json

import pytest

from sparseattn.core import InvalidParameterError
from sparseattn.eval.sweep import SweepConfig, planned, run_sweep, with_relative_increase


def small_config(**kw):
    base = {"texts": ["sotu"], "n_tokens": 96, "densities": [0.5, 0.2], "methods": ["topk", "threshold"]}
    return SweepConfig(**{**base, **kw})


def test_sweep_persists_every_row_and_resumes(smollm, tmp_path):
    cfg = small_config()
    seen = []
    rows = run_sweep(cfg, tmp_path, smollm, on_row=lambda row, done, total: seen.append((done, total)))
    assert [(r["text"], r["method"], r["target_density"]) for r in rows] == planned(cfg)
    assert seen[-1] == (5, 5)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["rows"] == rows and saved["config"] == cfg.model_dump()
    topk = {r["target_density"]: r for r in rows if r["method"] == "topk"}
    assert topk[0.2]["ppl"] > topk[0.5]["ppl"] > rows[0]["ppl"]
    thr = {r["target_density"]: r for r in rows if r["method"] == "threshold"}
    assert thr[0.5]["density"] == pytest.approx(0.5, abs=0.1)  # calibrated on dense Q/K, measured sparse
    # interrupted run: drop the last two rows, resume, and only those are measured again
    saved["rows"] = rows[:3]
    (tmp_path / "results.json").write_text(json.dumps(saved))
    seen.clear()
    again = run_sweep(cfg, tmp_path, smollm, on_row=lambda row, done, total: seen.append(done))
    assert seen == [4, 5] and again[:3] == rows[:3]
    assert again[3]["ppl"] == pytest.approx(rows[3]["ppl"], rel=1e-9)
    rel = with_relative_increase(again)
    assert rel[0]["rel_increase"] == 0
    assert all(r["rel_increase"] == pytest.approx(r["ppl"] / rows[0]["ppl"] - 1) for r in rel)


def test_sweep_refuses_to_mix_configurations(smollm, tmp_path):
    run_sweep(small_config(methods=["topk"], densities=[0.5]), tmp_path, smollm)
    with pytest.raises(InvalidParameterError, match="another configuration"):
        run_sweep(small_config(methods=["topk"], densities=[0.3]), tmp_path, smollm)


@pytest.mark.parametrize(
    ("kw", "needle"),
    [
        ({"texts": ["hamlet"]}, "unknown text"),
        ({"densities": [0.0]}, r"\(0, 1\]"),
        ({"densities": []}, "at least 1"),
        ({"methods": ["sofa"]}, "topk"),
        ({"n_tokens": 4}, "greater than or equal to 16"),
        ({"model": "gpt"}, "unknown model"),
        ({"colour": "red"}, "Extra inputs"),
    ],
)
def test_bad_sweep_configs(kw, needle):
    with pytest.raises(ValueError, match=needle):
        small_config(**kw)
