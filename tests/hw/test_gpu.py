import pytest

from sparseattn.core import Shape
from sparseattn.hw import load_arch, roofline_seconds, simulate_gpu
from sparseattn.hw.gpu import H100_SDPA_MS, attention_bytes, attention_flops


def _bench_shape(n: int, causal: bool = False) -> Shape:
    return Shape(batch=1, heads=32, kv_heads=32, q_len=n, k_len=n, head_dim=128, causal=causal)


@pytest.mark.parametrize(("tokens", "measured_ms"), sorted(H100_SDPA_MS.items()))
def test_h100_roofline_is_within_15_percent_of_measurements(tokens, measured_ms):
    modelled = roofline_seconds(load_arch("h100"), _bench_shape(tokens))["time"] * 1e3
    assert abs(modelled / measured_ms - 1) < 0.15, (tokens, modelled, measured_ms)


def test_roofline_limits():
    h100 = load_arch("h100")
    prefill = roofline_seconds(h100, _bench_shape(8192))
    assert prefill["compute"] > prefill["memory"] and prefill["time"] == prefill["compute"]
    decode = Shape(batch=1, heads=32, kv_heads=8, q_len=1, k_len=65536, head_dim=128, causal=True)
    t = roofline_seconds(h100, decode)
    assert t["memory"] > t["compute"] and t["time"] == pytest.approx(
        attention_bytes(decode) / (h100.hbm_gbps * 1e9 * h100.memory_efficiency))
    # causal attention pays half the pairs (plus the diagonal)
    assert attention_flops(_bench_shape(4096, True)) == pytest.approx(attention_flops(_bench_shape(4096)) / 2, 1e-3)
    # an A100 is slower than an H100 on the same work
    assert roofline_seconds(load_arch("a100"), _bench_shape(4096))["time"] > prefill["time"] / 4


def test_gpu_energy_is_board_power_times_time():
    h100 = load_arch("h100")
    r = simulate_gpu(h100, _bench_shape(4096))
    assert r.energy_j == pytest.approx(h100.board_power_w * r.latency_s)
    assert r.power_w == pytest.approx(700)
    with pytest.raises(ValueError, match="no 'fp4' peak"):
        roofline_seconds(h100, _bench_shape(4096), "fp4")
