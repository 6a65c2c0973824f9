"""Equal-accuracy operating points for PADE's iso comparison (issue 12, section 5).

PADE's Table III compares designs at equal accuracy. Our accuracy measure is the perplexity change of SmolLM2-135M
(every layer, Moby-Dick, 1024 tokens, training-free) -- the protocol of ``bench_pade.py`` and
``bench_baselines.py``. PADE's bundled trace setting (``alpha=0.4, radius=16``) measures +2.11% there
(``bench_pade.json``). This script measures Sanger (threshold) and SOFA (``keys="k"``, keep fraction ``k``) at
settings around that change, so the density where each design's perplexity change equals PADE's can be read off by
interpolation (the settings chosen: :data:`sparseattn.eval.hwtraces.VARIANTS`). DOTA has no trained detector
here, so it has no such point.

Rows go to ``benchmarks/results/bench_iso_points.json`` as they finish; a rerun resumes.
``python benchmarks/bench_iso_points.py`` (about 10 minutes on 2 cores).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from sparseattn.eval import perplexity
from sparseattn.models import load_model

RESULTS = Path(__file__).parent / "results"
TEXT, TOKENS = "moby-dick", 1024
POINTS = [
    ("sanger", {"threshold": 4e-4}),
    ("sanger", {"threshold": 3e-4}),
    ("sanger", {"threshold": 2e-4}),
    ("sofa", {"k": 0.4}),
    ("sofa", {"k": 0.45}),
]


def main() -> None:
    torch.set_grad_enabled(False)
    torch.set_num_threads(2)
    path = RESULTS / "bench_iso_points.json"
    data = json.loads(path.read_text()) if path.exists() else {"text": TEXT, "tokens": TOKENS, "rows": []}
    done = {(r["method"], json.dumps(r["params"], sort_keys=True)) for r in data["rows"]}
    lm = load_model()
    for method, params in POINTS:
        if (method, json.dumps(params, sort_keys=True)) in done:
            continue
        r = perplexity(lm, TEXT, TOKENS, method, **params)
        data["rows"].append({"method": method, "params": params, "ppl": r.ppl, "density": r.density})
        RESULTS.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=1))
        print(method, params, f"ppl {r.ppl:.3f} density {r.density:.4f}", flush=True)


if __name__ == "__main__":
    main()
