import pytest
import torch

from sparseattn.api import attention
from sparseattn.eval import attention_fidelity, capture_qkv, threshold_delta_for_density


@pytest.fixture(scope="module")
def captured(smollm):
    return capture_qkv(smollm, "moby-dick", 512, layers=[2, 10, 20])


def test_capture_gives_real_layers(captured):
    assert sorted(captured) == [2, 10, 20]
    c = captured[10]
    assert c.q.shape == (1, 9, 512, 64) and c.k.shape == (1, 3, 512, 64) and c.causal


def test_dense_fidelity_is_perfect(captured):
    c = captured[2]
    f = attention_fidelity(c.q, c.k, c.v, "dense", causal=True, scale=c.scale)
    assert f.recall == pytest.approx(1.0, abs=1e-6) and f.output_rel_error < 1e-6 and f.density == 1.0


def test_recall_and_error_follow_density_on_real_qkv(captured):
    c = captured[10]
    fs = [attention_fidelity(c.q, c.k, c.v, "topk", causal=True, scale=c.scale, ratio=r) for r in (0.05, 0.2, 0.5)]
    assert fs[0].recall < fs[1].recall < fs[2].recall < 1.0
    assert fs[0].output_rel_error > fs[1].output_rel_error > fs[2].output_rel_error > 0
    assert all(f.recall_min <= f.recall for f in fs)
    # real attention is concentrated: half the keys hold far more than half the mass
    assert fs[2].recall > 0.8


def test_threshold_calibration_hits_the_target_density(captured):
    targets = [0.5, 0.2, 0.05]
    deltas = threshold_delta_for_density(captured.values(), targets)
    assert deltas[0.5] > deltas[0.2] > deltas[0.05] > 0
    for t in targets:
        kept = valid = 0
        for c in captured.values():
            r = attention(c.q, c.k, c.v, "threshold", causal=True, scale=c.scale, delta=deltas[t])
            kept += r.kept_pairs
            valid += r.trace.shape.valid_pairs
        assert kept / valid == pytest.approx(t, abs=0.005)


def test_calibration_rejects_bad_targets(captured):
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        threshold_delta_for_density(captured.values(), [0.0])
    with pytest.raises(ValueError, match="no captured"):
        threshold_delta_for_density([], [0.5])
    assert torch.is_tensor(captured[2].q)
