"""Sparse attention in a real encoder: all-MiniLM-L6-v2 embeddings vs density, every method in every layer.

The papers' BERT results are bidirectional; here the bundled BERT sentence encoder embeds 48 passages of 256 tokens
(24 from each bundled text) densely and with each method, at several settings. Reported per setting: density
(kept / valid pairs over every layer and passage), mean and worst cosine between the dense and the sparse
embedding of a passage, and retrieval agreement (each passage's nearest other passage unchanged;
:mod:`sparseattn.eval.embedding`). The oracle top-k at each measured density is the frontier.

Rows are saved to ``benchmarks/results/bench_encoder.json`` as they finish (a rerun resumes);
``benchmarks/results/bench_encoder.md`` is the table. ``python benchmarks/bench_encoder.py`` (a few minutes).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from sparseattn.core.files import write_atomic
from sparseattn.eval.embedding import _embed_all, embedding_fidelity, passages
from sparseattn.models import load_model

RESULTS = Path(__file__).parent / "results"
TOKENS = 256
SETTINGS: dict[str, list[dict]] = {
    "topk": [{"ratio": r} for r in (0.5, 0.3, 0.2, 0.1)],
    "threshold": [{"delta": d} for d in (8.0, 6.0, 4.0, 2.0)],
    "sofa": [{"k": k} for k in (0.5, 0.3, 0.2, 0.1)],
    "pade": [{"radius": 16.0, "alpha": 0.4}, {"radius": 8.0, "alpha": 0.5}, {"radius": 5.0, "alpha": 0.5}],
    "sanger": [{"threshold": t} for t in (5e-4, 2e-3, 2e-2)],
    "dota": [{"keep": k} for k in (0.4, 0.2, 0.1)],
    "energon": [{"alpha1": -0.2, "alpha2": 0.1}, {"alpha1": 0.0, "alpha2": 0.3}, {"alpha1": 0.2, "alpha2": 0.5}],
    "elsa": [{"density": d} for d in (0.5, 0.25, 0.1)],
    "a3": [{"m_ratio": 2.0, "delta": 8.0}, {"m_ratio": 1.0, "delta": 5.0}, {"m_ratio": 0.5, "delta": 3.0}],
    "spatten": [{"token_keep": t} for t in (0.75, 0.5, 0.25)],
}


def table(rows: list[dict]) -> str:
    lines = ["| method | setting | density | cosine to dense (mean / worst) | retrieval agreement | "
             "oracle top-k at that density: cosine / agreement |", "|---|---|---:|---|---:|---|"]
    for r in rows:
        setting = ", ".join(f"{k}={v}" for k, v in r["params"].items()) or "-"
        o = r.get("oracle")
        oracle = "-" if o is None else f"{o['cosine']:.4f} / {o['retrieval_agreement']:.3f}"
        lines.append(f"| {r['method']} | {setting} | {r['density']:.3f} | {r['cosine']:.4f} / {r['cosine_min']:.4f} "
                     f"| {r['retrieval_agreement']:.3f} | {oracle} |")
    return "\n".join(lines)


def main() -> None:
    torch.set_grad_enabled(False)
    torch.set_num_threads(2)
    path = RESULTS / "bench_encoder.json"
    data = json.loads(path.read_text()) if path.exists() else {"tokens": TOKENS, "rows": []}
    done = {(r["method"], json.dumps(r["params"], sort_keys=True)) for r in data["rows"]}
    enc = load_model("minilm-l6")
    dense = _embed_all(enc, passages(enc, TOKENS))
    for method, settings in SETTINGS.items():
        for params in settings:
            if (method, json.dumps(params, sort_keys=True)) in done:
                continue
            r = embedding_fidelity(enc, method, TOKENS, dense=dense, **params).to_dict()
            if method != "topk":  # the frontier at the same density
                o = embedding_fidelity(enc, "topk", TOKENS, dense=dense, ratio=min(1.0, r["density"]))
                r["oracle"] = {"cosine": o.cosine, "retrieval_agreement": o.retrieval_agreement,
                               "density": o.density}
            data["rows"].append(r)
            write_atomic(path, json.dumps(data, indent=1))
            print(f"{method:9s} {params} density {r['density']:.3f} cosine {r['cosine']:.4f} "
                  f"agreement {r['retrieval_agreement']:.3f}", flush=True)
    write_atomic(RESULTS / "bench_encoder.md",
                 f"# all-MiniLM-L6-v2: sparse attention in every layer, {len(dense)} passages of {TOKENS} tokens\n\n"
                 + table(data["rows"]) + "\n")


if __name__ == "__main__":
    main()
