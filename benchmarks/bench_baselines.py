"""The baseline accelerators' algorithms on SmolLM2: accuracy, density and prediction cost, beside the oracle.

Each of Sanger, DOTA, Energon, ELSA, A3 and SpAtten runs in every layer at its paper's default and at one
setting more and one less aggressive, on both bundled texts at 1024 tokens; the oracle top-k then runs at
each measured density. Prediction cost is the bit-weighted complexity (``sparseattn.hw.complexity``) of the
trace's ``predict`` stage over all layers, as a fraction of dense INT8 QK^T MACs on the same pairs.

Rows are saved to ``benchmarks/results/bench_baselines.json`` as they finish; a rerun resumes.
``python benchmarks/bench_baselines.py`` (about 25 minutes on 2 cores; A3 is the slow one).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from sparseattn.core.workload import OpKey
from sparseattn.eval import perplexity
from sparseattn.hw.complexity import WEIGHTS_TEXT, weighted
from sparseattn.models import load_model

RESULTS = Path(__file__).parent / "results"
SETTINGS = {
    "sanger": [("default", {"threshold": 2e-3}), ("more", {"threshold": 2e-2}), ("less", {"threshold": 5e-4})],
    "dota": [("default", {"keep": 0.2}), ("more", {"keep": 0.1}), ("less", {"keep": 0.4})],
    "energon": [
        ("default", {"alpha1": 0.0, "alpha2": 0.3}),
        ("more", {"alpha1": 0.2, "alpha2": 0.5}),
        ("less", {"alpha1": -0.2, "alpha2": 0.1}),
    ],
    "elsa": [("default", {"density": 0.25}), ("more", {"density": 0.1}), ("less", {"density": 0.5})],
    "a3": [
        ("default", {"m_ratio": 1.0, "delta": 5.0}),
        ("more", {"m_ratio": 0.5, "delta": 3.0}),
        ("less", {"m_ratio": 2.0, "delta": 8.0}),
    ],
    "spatten": [("default", {"token_keep": 0.5}), ("more", {"token_keep": 0.25}), ("less", {"token_keep": 0.75})],
}
TEXTS = ("moby-dick", "sotu")
TOKENS = 1024


def prediction_fraction(traces: list) -> float:
    predict = sum(weighted({k: c for k, c in w.ops.items() if k.stage == "predict"}) for w in traces)
    dense = sum(weighted({OpKey("qk", "mac", 8): w.shape.valid_pairs * w.shape.head_dim}) for w in traces)
    return predict / dense


def main() -> None:
    torch.set_grad_enabled(False)
    path = RESULTS / "bench_baselines.json"
    data = json.loads(path.read_text()) if path.exists() else {"weights": WEIGHTS_TEXT, "rows": []}
    done = {(r["text"], r["method"], r["setting"]) for r in data["rows"]}
    lm = load_model()

    def save() -> None:
        RESULTS.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=1))

    for text in TEXTS:
        if (text, "dense", "-") not in done:
            r = perplexity(lm, text, TOKENS, "dense")
            data["rows"].append(
                {"text": text, "method": "dense", "setting": "-", "params": {}, "ppl": r.ppl, "density": 1.0}
            )
            save()
        for method, settings in SETTINGS.items():
            for name, params in settings:
                if (text, method, name) in done:
                    continue
                r = perplexity(lm, text, TOKENS, method, capture_traces=True, **params)
                oracle = perplexity(lm, text, TOKENS, "topk", ratio=min(1.0, max(r.density, 1e-3)))
                row = {
                    "text": text,
                    "method": method,
                    "setting": name,
                    "params": params,
                    "ppl": r.ppl,
                    "density": r.density,
                    "prediction_cost_vs_int8_qk": prediction_fraction(r.traces),
                    "oracle_topk_ppl": oracle.ppl,
                    "oracle_topk_density": oracle.density,
                    "seconds": round(r.seconds, 1),
                }
                data["rows"].append(row)
                print(
                    f"{text} {method} {name} {params}: ppl {r.ppl:.2f} density {r.density:.3f} "
                    f"pred {row['prediction_cost_vs_int8_qk']:.3f} oracle {oracle.ppl:.2f} ({r.seconds:.0f} s)",
                    flush=True,
                )
                save()
    (RESULTS / "bench_baselines.md").write_text(markdown(data))
    print(f"wrote {path} and .md")


def markdown(data: dict) -> str:
    dense = {r["text"]: r["ppl"] for r in data["rows"] if r["method"] == "dense"}
    lines = [
        f"# Baselines on SmolLM2-135M, {TOKENS} tokens, every layer (training-free)",
        "",
        f"Prediction cost: bit-weighted predict-stage ops / dense INT8 QK^T MACs ({data['weights']}).",
        "",
        "| text | method | setting | parameters | density | ppl (vs dense) | oracle top-k at that density | "
        "prediction cost |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in data["rows"]:
        if r["method"] == "dense":
            continue
        base = dense[r["text"]]
        ps = ", ".join(f"{k}={v}" for k, v in r["params"].items())
        lines.append(
            f"| {r['text']} | {r['method']} | {r['setting']} | {ps} | {r['density']:.3f} | "
            f"{r['ppl']:.2f} ({100 * (r['ppl'] / base - 1):+.1f}%) | "
            f"{r['oracle_topk_ppl']:.2f} ({100 * (r['oracle_topk_ppl'] / base - 1):+.1f}%) | "
            f"{r['prediction_cost_vs_int8_qk']:.3f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
