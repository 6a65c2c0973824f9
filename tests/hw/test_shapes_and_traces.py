import os

import pytest

from sparseattn.hw import (
    ConfigError,
    arch_names,
    load_arch,
    load_model_shape,
    load_trace,
    method_of,
    model_shape_names,
    trace_for,
    trace_names,
    with_density,
)
from sparseattn.hw.traces import TRACE_DIR, trace_name

PAPER_MODELS = {"llama2-7b", "llama3-8b", "opt-1.3b", "bloom-1.7b", "qwen-7b", "bert-base", "bert-large", "vit-l16",
                "gpt2"}


def test_every_paper_model_has_a_shape_file():
    assert PAPER_MODELS <= set(model_shape_names())
    llama3 = load_model_shape("llama3-8b")
    assert (llama3.layers, llama3.heads, llama3.kv_heads, llama3.head_dim) == (32, 32, 8, 128)
    assert not load_model_shape("bert-base").causal and load_model_shape("gpt2").causal
    shape = load_model_shape("llama2-7b").shape(4096)
    assert (shape.q_len, shape.layers, shape.group_size) == (4096, 32, 1)
    with pytest.raises(ConfigError, match="seq must be a positive int"):
        load_model_shape("gpt2").shape(0)
    with pytest.raises(ConfigError, match="unknown model shape 'llama9'"):
        load_model_shape("llama9")


def test_one_naming_rule_and_every_architecture_has_its_traces():
    assert trace_name("sofa", causal=True) == "sofa" and trace_name("sofa", causal=False) == "sofa-bidir"
    names = set(trace_names())
    for arch in arch_names():
        a = load_arch(arch)
        assert {trace_name(method_of(a), True), trace_name(method_of(a), False)} <= names
        assert trace_for(a, causal=False).shape.causal is False
    for name in names:
        t = load_trace(name)
        assert t.profile is not None and 0 < t.density <= 1
        assert t.shape.causal == (not name.endswith("-bidir")) and t.meta["captured_on"]
        if t.shape.causal:
            assert t.meta["captured_on"].startswith("SmolLM2-135M") and t.shape.q_len == 1024
    assert TRACE_DIR.parent.name == "hw"  # hw reads its own package data
    with pytest.raises(ConfigError, match=r"unknown trace 'nope'; bundled: a3"):
        load_trace("nope")


def test_load_trace_returns_fresh_objects_and_never_serves_a_stale_file(tmp_path):
    a, b = load_trace("sanger"), load_trace("sanger")
    assert a is not b and a.terms == b.terms
    a.meta["mine"] = 1
    assert "mine" not in load_trace("sanger").meta
    path = tmp_path / "t.json"
    first = load_trace("sanger")
    first.save(path)
    assert load_trace(path).meta.get("mark") is None
    first.meta["mark"] = "edited"
    first.save(path)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))  # even within the clock's resolution
    assert load_trace(path).meta["mark"] == "edited"


def test_with_density_rescales_kept_work_only():
    t = load_trace("sanger")
    d = with_density(t, 2 * t.density)
    assert d.density == pytest.approx(2 * t.density, rel=0.02)
    assert d.count(stage="pv", op="mac") == pytest.approx(2 * t.count(stage="pv", op="mac"), rel=1e-6)
    assert d.count(stage="pv", op="mul") == t.count(stage="pv", op="mul")  # per-row normalisation
    assert d.count(stage="predict") == t.count(stage="predict")
    assert "paper-stated" in d.meta["density_source"]
    pade = load_trace("pade")
    half = with_density(pade, pade.density / 2)
    assert half.extra_reads["v_survivors"] == pytest.approx(pade.extra_reads["v_survivors"] / 2)  # pair-based read
    assert half.samples.keys() == pade.samples.keys()  # timing samples are behaviour, kept
    with pytest.raises(ConfigError, match="density must be in"):
        with_density(t, 0)


# Float reductions differ in the last bits between CPUs (AVX2 vs AVX-512 softmax/SDPA kernels): a capture on
# another machine flips a handful of near-threshold pairs (11 of 28.3M for Sanger; counts move by ~1e-5 relative).
# The shipped traces record the CPU they were captured on; a fresh capture must agree within a tolerance that such
# reordering cannot cross but any change of method or counting would (1e-3 relative).
CROSS_MACHINE = 1e-3


def test_bundled_trace_matches_a_fresh_capture(smollm, tmp_path):
    from sparseattn.eval.hwtraces import capture_hw_traces

    fresh = capture_hw_traces(tmp_path, ["sanger"], bidirectional=False, verbose=False)["sanger"]
    shipped = load_trace("sanger")
    assert shipped.meta["device"].startswith("cpu: ")  # where it was captured
    assert fresh.density == pytest.approx(shipped.density, rel=CROSS_MACHINE)
    assert fresh.ops.keys() == shipped.ops.keys()
    for key, count in fresh.ops.items():
        assert shipped.ops[key] == pytest.approx(count, rel=CROSS_MACHINE)
    moved = abs(fresh.profile.counts - shipped.profile.counts).sum()
    assert moved <= CROSS_MACHINE * shipped.profile.kept_pairs


def test_hw_reads_no_number_from_the_free_meta():
    """The hardware models read a trace's method content as typed records (core/records.py), never from
    ``meta`` by key: the only meta entry they read is the method's name, for notes (they may write notes)."""
    import ast
    from pathlib import Path

    import sparseattn.hw

    keys = []
    for path in Path(sparseattn.hw.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            target = node.value if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) else (
                node.func.value if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "get" else None)
            if isinstance(target, ast.Attribute) and target.attr == "meta":
                key = node.slice if isinstance(node, ast.Subscript) else (node.args[0] if node.args else None)
                keys.append((path.name, ast.literal_eval(key) if isinstance(key, ast.Constant) else "?"))
    assert keys and {k for _, k in keys} == {"method"}, keys
