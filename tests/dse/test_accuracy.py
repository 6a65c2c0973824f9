"""Accuracy-aware searches on the real bundled model (slow: it loads SmolLM2-135M once, ~20 s):

* SOFA's own tiling objective over per-layer Tc and k, with L_CE from the per-layer accuracy table, computed once
  and then only looked up (a second study computes nothing);
* STAR's keep ratio as a method parameter: each point's trace computed from the cached Q/K/V, beside its latency
  and the model's cross-entropy from the joint accuracy table.
"""

from __future__ import annotations

import pytest

from sparseattn.dse import AccuracyTable, StudyConfig, parse_space, prepare, resolve, run_study, sofa_terms

pytestmark = pytest.mark.slow


def sofa_space(cache, mode="per_layer"):
    return resolve(parse_space({
        "name": "sofa-tiny", "workload": {"arch": "sofa"},
        "parameters": [{"path": "method.Tc", "values": [2, 8], "per_layer": [2]},
                       {"path": "method.k", "values": [0.1, 0.3]}],
        "objectives": [{"name": "sofa", "paper_model": "gpt2"}],
        "accuracy": {"n_tokens": 64, "layers": [2], "mode": mode, "cache_dir": str(cache)},
    }, "test"))


def test_sofa_paper_objective_from_the_accuracy_table(tmp_path):
    space = sofa_space(tmp_path)
    assert not space.needs_sim  # the paper's objective is algorithmic: no simulation
    result = run_study(space, StudyConfig(sampler="grid", n_trials=4, storage="memory", study_name="s",
                                          workers=1, progress=False))
    table = AccuracyTable(space.file.accuracy, "sofa", [2])
    assert len(table.entries) == 1 + 4  # dense + (layer 2) x 2 Tc x 2 k
    for r in result.records:
        params = space.candidate(r.point).method_params
        expect = sofa_terms(table.nll(params), params, [2], 0.4, 0.42)
        assert r.objectives["sofa"] == pytest.approx(expect.total)
        assert r.metrics["sofa_l_exp"] == r.point["Tc.2"]
    assert table.fill(space.method_points()) == 0  # computed once: nothing left to run
    joint = sofa_space(tmp_path, "joint")
    prepare(joint, lambda m: None)
    jt = AccuracyTable(joint.file.accuracy, "sofa", [2])
    for params in joint.method_points():  # with one layer the additive estimate is exact
        assert jt.nll(params) == pytest.approx(table.nll(params), abs=1e-6)


def test_method_parameter_traces_from_cached_qkv(tmp_path):
    space = resolve(parse_space({
        "name": "star-k", "workload": {"arch": "star", "seq": 4096},
        "parameters": [{"path": "method.k", "values": [0.1, 0.4]}],
        "objectives": ["latency_ms", "nll"],
        "accuracy": {"n_tokens": 128, "layers": [2, 12], "cache_dir": str(tmp_path)},
    }, "test"))
    assert space.computed_trace and space.needs_accuracy
    result = run_study(space, StudyConfig(sampler="grid", n_trials=2, storage="memory", study_name="k",
                                          workers=2, progress=False))  # workers read the caches the driver made
    by_k = {r.point["k"]: r for r in result.records}
    assert by_k[0.4].objectives["latency_ms"] > by_k[0.1].objectives["latency_ms"]
    assert by_k[0.4].objectives["nll"] < by_k[0.1].objectives["nll"]
    assert len(list((tmp_path / "traces").glob("*.json"))) == 2
    assert len(list(tmp_path.glob("qkv-*.pt"))) == 1
