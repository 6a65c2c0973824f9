"""Timing helpers shared by the benchmark scripts: contenders interleaved, medians, ratios in one run."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import sparseattn


def interleaved_ms(fns: dict[str, Callable[[], object]], repeats: int = 3) -> dict[str, float]:
    """Median wall time in ms of each contender, run A, B, C, A, B, C, ... after one warm-up each, so that
    machine noise hits them alike."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for fn in fns.values():
        fn()
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) * 1e3 for name, ts in times.items()}


def layer_speed(lm, method: str, tokens: int = 2048, layer: int = 10, **params: object) -> dict:
    """One real SmolLM2 layer's Q/K/V at ``tokens``: ``method`` vs ``dense`` and the materialised masked path."""
    from sparseattn.eval import capture_qkv

    c = capture_qkv(lm, "moby-dick", tokens, layers=[layer])[layer]
    ms = interleaved_ms(
        {
            "dense": lambda: sparseattn.attention(c.q, c.k, c.v, "dense", causal=True, scale=c.scale),
            "masked": lambda: sparseattn.attention(
                c.q, c.k, c.v, "threshold", causal=True, scale=c.scale, delta=float("inf")
            ),
            method: lambda: sparseattn.attention(c.q, c.k, c.v, method, causal=True, scale=c.scale, **params),
        }
    )
    return {"ms": ms, f"{method}_vs_dense": ms[method] / ms["dense"], f"{method}_vs_masked": ms[method] / ms["masked"]}
