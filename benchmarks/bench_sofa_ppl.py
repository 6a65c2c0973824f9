"""SmolLM2 perplexity with SOFA in every layer, both key sources, beside the oracle top-k at the same density.

Texts: moby-dick and sotu; windows of 1024 and 2048 tokens; k in {0.5, 0.3, 0.2, 0.1}; keys "k" (the given
K, INT8) and "cross_phase" (K predicted from X W_k, as the paper). Training-free: SOFA fine-tunes the
model after pruning, we do not, so these numbers are the loss before any recovery.

Rows are saved to ``benchmarks/results/bench_sofa_ppl.json`` after each measurement; a rerun resumes.
``python benchmarks/bench_sofa_ppl.py [--tokens 1024 2048] [--texts moby-dick sotu]`` (~15 min on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from sparseattn.eval import perplexity
from sparseattn.models import load_model

RESULTS = Path(__file__).parent / "results"
RATIOS = (0.5, 0.3, 0.2, 0.1)
KEYS = ("k", "cross_phase")


def plan(texts: list[str], tokens: list[int]) -> list[tuple]:
    rows = []
    for n in tokens:
        for text in texts:
            rows.append((text, n, "dense", None, None))
            for ratio in RATIOS:
                rows.append((text, n, "topk", ratio, None))
                rows += [(text, n, "sofa", ratio, keys) for keys in KEYS]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, nargs="+", default=[1024, 2048])
    parser.add_argument("--texts", nargs="+", default=["moby-dick", "sotu"])
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    path = RESULTS / "bench_sofa_ppl.json"
    rows = json.loads(path.read_text())["rows"] if path.exists() else []
    done = {(r["text"], r["tokens"], r["method"], r["k"], r["keys"]) for r in rows}
    lm = load_model()
    for text, n, method, ratio, keys in plan(args.texts, args.tokens):
        if (text, n, method, ratio, keys) in done:
            continue
        params = {}
        if method == "topk":
            params = {"ratio": ratio}
        elif method == "sofa":
            params = {"k": ratio, "keys": keys}
        t0 = time.perf_counter()
        r = perplexity(lm, text, n, method, **params)
        rows.append(
            {
                "text": text,
                "tokens": n,
                "method": method,
                "k": ratio,
                "keys": keys,
                "ppl": r.ppl,
                "density": r.density,
                "seconds": round(time.perf_counter() - t0, 1),
            }
        )
        print(f"{text} {n} {method} k={ratio} keys={keys}: ppl {r.ppl:.2f} density {r.density:.3f}", flush=True)
        RESULTS.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"model": lm.name, "rows": rows}, indent=1))
    (RESULTS / "bench_sofa_ppl.md").write_text(markdown(rows))
    print(f"wrote {path} and .md")


def markdown(rows: list[dict]) -> str:
    dense = {(r["text"], r["tokens"]): r["ppl"] for r in rows if r["method"] == "dense"}

    def cell(text: str, n: int, method: str, ratio: float, keys: str | None) -> str:
        for r in rows:
            if (r["text"], r["tokens"], r["method"], r["k"], r["keys"]) == (text, n, method, ratio, keys):
                rel = 100 * (r["ppl"] / dense[(text, n)] - 1)
                return f"{r['ppl']:.2f} ({rel:+.1f}%), {r['density']:.3f}"
        return "-"

    lines = [
        "# SOFA perplexity on SmolLM2-135M (training-free: no fine-tuning after pruning)",
        "",
        "Cells: perplexity (change vs dense), density.",
        "",
        "| text | tokens | dense | k | oracle top-k | SOFA keys=k | SOFA cross-phase |",
        "|---|---|---|---|---|---|---|",
    ]
    for (text, n), ppl in dense.items():
        for ratio in RATIOS:
            lines.append(
                f"| {text} | {n} | {ppl:.2f} | {ratio} | {cell(text, n, 'topk', ratio, None)} | "
                f"{cell(text, n, 'sofa', ratio, 'k')} | {cell(text, n, 'sofa', ratio, 'cross_phase')} |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
