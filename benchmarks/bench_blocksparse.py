"""Block-sparse STAR (``star_block``) on SmolLM2: which block predictor, and which default budget.

1. **Predictor recall** -- recall of the exact block top-k by each predictor (``dlzs``, ``pooled``, ``pade``):
   blocks ranked by their largest exact scaled logit (maximised over the GQA group, as the selection is
   group-shared), the same budget ``ceil(ratio * valid key blocks)`` per query block, no forced blocks; the
   fraction of the exact top blocks the predicted top blocks contain, summed over the query blocks, heads and
   the 30 layers of SmolLM2-135M on the first 2048 tokens of Moby-Dick (causal). Keep ratios 0.25 and 0.1, blocks
   128 x 64 and 64 x 64.
2. **Budget** -- SmolLM2-135M perplexity with ``star_block`` (``dlzs``, 128 x 64 blocks) in every layer on 4096
   tokens of Moby-Dick, against dense, over ``ratio`` / ``mass`` and ``local_blocks``.

Rows are saved to ``benchmarks/results/bench_blocksparse.json`` after each measurement (a rerun resumes) and
tabulated in ``bench_blocksparse.md``; :mod:`sparseattn.methods.blocksparse` takes its defaults from them. Budget
rows marked ``"source": "transcribed"`` are the measurements the defaults were first chosen by (written into the
method's docstring with commit 18a6c81, perplexity change and density only); a run of ``--part budget`` replaces
each with a measured row. ``python benchmarks/bench_blocksparse.py [--part recall budget]``.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch

from sparseattn.core.attention import grouped_scores, valid_mask_4d
from sparseattn.core.blockplan import StarBlockParams, block_codes, plan_blocks
from sparseattn.core.call import AttentionCall
from sparseattn.core.validation import validate_qkv
from sparseattn.eval import capture_qkv, perplexity
from sparseattn.methods.blocksparse import predict_block_scores, select_blocks
from sparseattn.models import load_model

RESULTS = Path(__file__).parent / "results"
PREDICTORS = ("dlzs", "pooled", "pade")
RECALL_POINTS = ((0.25, 128, 64), (0.25, 64, 64), (0.1, 128, 64), (0.1, 64, 64))
RECALL_TOKENS, BUDGET_TOKENS = 2048, 4096
# local_blocks absent: the method's default (the transcribed rows of these two did not state it)
BUDGETS = ({"ratio": 0.25, "local_blocks": 1}, {"ratio": 0.25, "local_blocks": 3}, {"ratio": 0.4},
           {"ratio": 0.3, "local_blocks": 6}, {"mass": 0.9, "local_blocks": 3}, {"mass": 0.95},
           {"mass": 0.95, "local_blocks": 4}, {"mass": 0.97, "local_blocks": 2})


def exact_block_max(q: torch.Tensor, k: torch.Tensor, scale: float, bq: int, bk: int) -> torch.Tensor:
    """Largest exact scaled logit of every (query block, key block) over the valid pairs, maximised over the GQA
    group: ``[B, Hkv, Tq, Tk]`` (``-inf`` where a block has no valid pair)."""
    shape, _ = validate_qkv(q, k, k, True, scale)
    s = grouped_scores(q, k, scale).masked_fill_(~valid_mask_4d(shape, q.device), float("-inf"))
    b, h, n, m = s.shape
    tq, tk = math.ceil(n / bq), math.ceil(m / bk)
    s = torch.nn.functional.pad(s, (0, tk * bk - m, 0, tq * bq - n), value=float("-inf"))
    blocks = s.view(b, h, tq, bq, tk, bk).amax(dim=(3, 5))
    return blocks.view(b, shape.kv_heads, h // shape.kv_heads, tq, tk).amax(dim=2)


def block_recall(q: torch.Tensor, k: torch.Tensor, scale: float, predictor: str, ratio: float, bq: int,
                 bk: int) -> tuple[float, float]:
    """``(exact top blocks found, exact top blocks)`` of one layer (see the module docstring)."""
    p = StarBlockParams(predictor=predictor, block_q=bq, block_k=bk, ratio=ratio, keep_first=False,
                        keep_diagonal=False, local_blocks=0, group_shared=True)
    shape, scale = validate_qkv(q, k, k, True, scale)
    call = AttentionCall(q=q, k=k, v=k, shape=shape, scale=scale)
    plan = plan_blocks(shape, p, q.device)
    predicted = predict_block_scores(block_codes(call, p), plan, 0, plan.tq, True)
    kept, _, _ = select_blocks(predicted, plan, 0, None)
    exact, _, _ = select_blocks(exact_block_max(q, k, scale, bq, bk), plan, 0, None)
    return float((kept & exact).sum()), float(exact.sum())


def measure_recall(lm, rows: list[dict], save) -> None:
    done = {(r["predictor"], r["ratio"], r["block_q"], r["block_k"]) for r in rows if r["part"] == "recall"}
    if all((pr, *pt) in done for pr in PREDICTORS for pt in RECALL_POINTS):
        return
    layers = capture_qkv(lm, "moby-dick", RECALL_TOKENS)
    for ratio, bq, bk in RECALL_POINTS:
        for predictor in PREDICTORS:
            if (predictor, ratio, bq, bk) in done:
                continue
            found = total = 0.0
            for c in layers.values():
                f, t = block_recall(c.q, c.k, c.scale, predictor, ratio, bq, bk)
                found, total = found + f, total + t
            rows.append({"part": "recall", "predictor": predictor, "ratio": ratio, "block_q": bq, "block_k": bk,
                         "tokens": RECALL_TOKENS, "layers": len(layers), "recall": found / total})
            print(f"recall {predictor} ratio={ratio} {bq}x{bk}: {found / total:.3f}", flush=True)
            save()


def measure_budget(lm, rows: list[dict], save) -> None:
    done = {json.dumps(r["params"], sort_keys=True) for r in rows
            if r["part"] == "budget" and r.get("source") != "transcribed"}
    for params in ({}, *BUDGETS):
        key = json.dumps(params, sort_keys=True)
        if key in done:
            continue
        t0 = time.perf_counter()
        r = perplexity(lm, "moby-dick", BUDGET_TOKENS, "star_block" if params else "dense", **params)
        rows[:] = [x for x in rows if not (x["part"] == "budget" and json.dumps(x["params"], sort_keys=True) == key)]
        rows.append({"part": "budget", "params": params, "tokens": BUDGET_TOKENS, "ppl": r.ppl,
                     "density": r.density, "seconds": round(time.perf_counter() - t0, 1)})
        print(f"budget {params or 'dense'}: ppl {r.ppl:.2f} density {r.density:.3f}", flush=True)
        save()


def markdown(rows: list[dict]) -> str:
    recall = {(r["predictor"], r["ratio"], r["block_q"], r["block_k"]): r["recall"] for r in rows
              if r["part"] == "recall"}
    lines = ["# Block-sparse STAR (star_block) on SmolLM2-135M, Moby-Dick", "",
             f"Recall of the exact block top-k ({RECALL_TOKENS} tokens, all layers, causal, GQA-shared, no forced "
             "blocks; best per row in bold):", "",
             "| keep ratio | block q x k | " + " | ".join(PREDICTORS) + " |", "|---|---|" + "---|" * len(PREDICTORS)]
    for ratio, bq, bk in RECALL_POINTS:
        vals = [recall.get((p, ratio, bq, bk)) for p in PREDICTORS]
        best = max((v for v in vals if v is not None), default=None)
        cells = ["-" if v is None else (f"**{v:.2f}**" if v == best else f"{v:.2f}") for v in vals]
        lines.append(f"| {ratio} | {bq} x {bk} | " + " | ".join(cells) + " |")
    budget = [r for r in rows if r["part"] == "budget"]
    dense = next((r["ppl"] for r in budget if not r["params"]), None)  # transcribed or measured
    lines += ["", f"Perplexity with star_block (dlzs, 128 x 64 blocks) in every layer, {BUDGET_TOKENS} tokens"
              + (f" (dense {dense:.2f}):" if dense else ":"), "", "| setting | ppl change vs dense | density |",
              "|---|---|---|"]
    for r in budget:
        if r["params"]:
            setting = ", ".join(f"{k}={v}" for k, v in r["params"].items())
            if r.get("source") != "transcribed":
                change = f"{100 * (r['ppl'] / dense - 1):+.1f}% ({r['ppl']:.2f})" if dense else f"{r['ppl']:.2f}"
            else:
                change = f"{r['change_pct']:+.2f}% (transcribed)"
            lines.append(f"| {setting} | {change} | {r['density']:.2f} |")
    if any(r.get("source") == "transcribed" for r in budget):
        lines += ["", "Transcribed rows: the measurements the defaults were first chosen by (commit 18a6c81; a setting "
                  "without local_blocks did not state it, and a new run uses the default); `--part budget` replaces "
                  "them with measured ones."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", nargs="+", default=["recall", "budget"], choices=["recall", "budget"])
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    path = RESULTS / "bench_blocksparse.json"
    rows = json.loads(path.read_text())["rows"] if path.exists() else []
    lm = load_model()

    def save() -> None:
        RESULTS.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"model": lm.name, "text": "moby-dick", "rows": rows}, indent=1))
        (RESULTS / "bench_blocksparse.md").write_text(markdown(rows))

    if "recall" in args.part:
        measure_recall(lm, rows, save)
    if "budget" in args.part:
        measure_budget(lm, rows, save)
    save()
    print(f"wrote {path} and .md")


if __name__ == "__main__":
    main()
