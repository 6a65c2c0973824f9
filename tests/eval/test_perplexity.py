import pytest

from sparseattn.core import InvalidParameterError
from sparseattn.eval import perplexity


def test_dense_perplexity_reproduces_the_reference_values(smollm):
    # shared/research/assets.md: 61.9 (Moby Dick) and 27.1 (SOTU 1936) at 1024 tokens with BOS
    moby = perplexity(smollm, "moby-dick", 1024, "dense")
    assert moby.ppl == pytest.approx(61.91, abs=0.05)
    assert moby.n_tokens == 1024 and moby.density == 1.0 and moby.valid_pairs == 30 * 9 * 1024 * 1025 // 2
    sotu = perplexity(smollm, "sotu", 1024, method=None)
    assert sotu.ppl == pytest.approx(27.11, abs=0.05) and sotu.method == "builtin"


def test_dense_equals_builtin_and_sparser_costs_more(smollm):
    builtin = perplexity(smollm, "moby-dick", 256, method=None)
    dense = perplexity(smollm, "moby-dick", 256, "dense")
    assert dense.nll == pytest.approx(builtin.nll, abs=1e-4)
    half = perplexity(smollm, "moby-dick", 256, "topk", ratio=0.5)
    tenth = perplexity(smollm, "moby-dick", 256, "topk", ratio=0.1)
    assert dense.ppl < half.ppl < tenth.ppl
    assert half.density == pytest.approx(0.5, abs=0.02) and half.params == {"ratio": 0.5}


def test_patching_some_layers(smollm):
    r = perplexity(smollm, "sotu", 128, "threshold", layers=[0, 1], delta=2.0)
    assert r.layers == [0, 1] and r.valid_pairs == 2 * 9 * 128 * 129 // 2 and r.density < 1


def test_bad_perplexity_requests(smollm):
    with pytest.raises(InvalidParameterError, match="unknown text"):
        perplexity(smollm, "war-and-peace", 128)
    with pytest.raises(InvalidParameterError, match="context of 8192"):
        perplexity(smollm, "sotu", 9000)
    with pytest.raises(InvalidParameterError, match="ratio"):
        perplexity(smollm, "sotu", 128, "topk", ratio=2.0)


def test_traces_can_be_captured_with_the_perplexity(smollm):
    r = perplexity(smollm, "sotu", 64, "topk", capture_traces=True, ratio=0.5)
    assert r.traces is not None and len(r.traces) == 30 and "traces" not in r.to_dict()
    assert sum(w.kept_pairs for w in r.traces) == r.kept_pairs
