import pytest

from sparseattn.hw import ConfigError, arch_names, load_arch, load_model_shape, load_trace, with_density
from sparseattn.hw.schema import AcceleratorArch
from sparseattn.hw.workloads import trace_names, workload_names

PAPER_MODELS = {"llama2-7b", "llama3-8b", "opt-1.3b", "bloom-1.7b", "qwen-7b", "bert-base", "bert-large", "vit-l16",
                "gpt2"}


def test_every_paper_model_has_a_shape_file():
    assert PAPER_MODELS <= set(workload_names())
    llama3 = load_model_shape("llama3-8b")
    assert (llama3.layers, llama3.heads, llama3.kv_heads, llama3.head_dim) == (32, 32, 8, 128)
    assert not load_model_shape("bert-base").causal and load_model_shape("gpt2").causal
    shape = load_model_shape("llama2-7b").shape(4096)
    assert (shape.q_len, shape.layers, shape.group_size) == (4096, 32, 1)
    with pytest.raises(ConfigError, match="seq must be a positive int"):
        load_model_shape("gpt2").shape(0)
    with pytest.raises(ConfigError, match="unknown workload 'llama9'"):
        load_model_shape("llama9")


def test_every_accelerator_has_causal_and_bidirectional_traces():
    names = set(trace_names())
    for arch in arch_names():
        a = load_arch(arch)
        if isinstance(a, AcceleratorArch):
            assert {a.method, f"{a.method}-bidir"} <= names
    for name in names:
        t = load_trace(name)
        assert t.profile is not None and 0 < t.density <= 1
        assert t.meta["captured_on"].startswith("SmolLM2-135M") and t.shape.q_len == 1024
        assert t.shape.causal == (not name.endswith("-bidir"))
    with pytest.raises(ConfigError, match=r"unknown trace 'nope'; bundled: a3"):
        load_trace("nope")


def test_with_density_rescales_kept_work_only():
    t = load_trace("sanger")
    d = with_density(t, 2 * t.density)
    assert d.density == pytest.approx(2 * t.density, rel=0.02)
    assert d.count(stage="pv", op="mac") == pytest.approx(2 * t.count(stage="pv", op="mac"), rel=1e-6)
    assert d.count(stage="pv", op="mul") == t.count(stage="pv", op="mul")  # per-row normalisation
    assert d.count(stage="predict") == t.count(stage="predict")
    assert "paper-stated" in d.meta["density_source"]
    with pytest.raises(ConfigError, match="density must be in"):
        with_density(t, 0)


def test_bundled_trace_matches_a_fresh_capture(smollm, tmp_path):
    from sparseattn.eval.hwtraces import capture_hw_traces

    fresh = capture_hw_traces(["sanger"], tmp_path, bidirectional=False, verbose=False)["sanger"]
    shipped = load_trace("sanger")
    assert fresh.density == pytest.approx(shipped.density, rel=1e-9)
    assert fresh.ops.keys() == shipped.ops.keys()
    for key, count in fresh.ops.items():
        assert shipped.ops[key] == pytest.approx(count, rel=1e-9)
