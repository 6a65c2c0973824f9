"""Speed of the reference methods against PyTorch SDPA on this machine's CPU, measured side by side.

For each shape, the contenders run interleaved (A, B, C, A, B, C, ...) so that machine noise hits them
alike; the median of the repeats is reported and every ratio is taken against SDPA from the same run.

* ``sdpa``      -- ``torch.nn.functional.scaled_dot_product_attention`` (fused CPU kernel), the baseline;
* ``dense``     -- ``sparseattn.attention(method="dense")``: validation, SDPA, trace (what users call);
* ``masked``    -- the materialised masked-softmax path every sparse reference shares (scores, mask,
  softmax, PV), at full density (``threshold`` with ``delta=inf``);
* ``topk 0.2`` / ``threshold`` -- two oracles, to show what selection costs on top.

Writes ``benchmarks/results/bench_reference.json`` and ``.md``. Usage: ``python benchmarks/bench_reference.py``.
"""

from __future__ import annotations

import argparse
import json
import platform
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch.nn.functional as F
from timing import interleaved_ms

import sparseattn
from sparseattn.core import valid_mask

RESULTS = Path(__file__).parent / "results"

# (label, batch, heads, kv_heads, q_len, k_len, head_dim, causal)
SHAPES = [
    ("smollm2 prefill 512", 1, 9, 3, 512, 512, 64, True),
    ("smollm2 prefill 1024", 1, 9, 3, 1024, 1024, 64, True),
    ("smollm2 prefill 2048", 1, 9, 3, 2048, 2048, 64, True),
    ("bert-base 512 (non-causal)", 1, 12, 12, 512, 512, 64, False),
    ("decode 8 q x 4096 cache", 1, 9, 3, 8, 4096, 64, True),
]


def contenders(q, k, v, causal: bool) -> dict[str, Callable[[], object]]:
    nq, nk = q.shape[2], k.shape[2]
    mask = None if not causal or nq == nk else valid_mask(nq, nk, True)
    square = causal and nq == nk
    gqa = q.shape[1] != k.shape[1]
    return {
        "sdpa": lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=square, enable_gqa=gqa),
        "dense": lambda: sparseattn.attention(q, k, v, "dense", causal=causal),
        "masked": lambda: sparseattn.attention(q, k, v, "threshold", causal=causal, delta=float("inf")),
        "topk 0.2": lambda: sparseattn.attention(q, k, v, "topk", causal=causal, ratio=0.2),
        "threshold 5": lambda: sparseattn.attention(q, k, v, "threshold", causal=causal, delta=5.0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    rows = []
    for label, b, h, hkv, nq, nk, d, causal in SHAPES:
        g = torch.Generator().manual_seed(0)
        q = torch.randn(b, h, nq, d, generator=g)
        k = torch.randn(b, hkv, nk, d, generator=g)
        v = torch.randn(b, hkv, nk, d, generator=g)
        ms = interleaved_ms(contenders(q, k, v, causal), args.repeats)
        row = {"shape": label, "B,H,Hkv,Nq,Nk,D": [b, h, hkv, nq, nk, d], "causal": causal}
        row.update({f"{name} ms": round(t, 3) for name, t in ms.items()})
        row.update({f"{name} / sdpa": round(t / ms["sdpa"], 2) for name, t in ms.items() if name != "sdpa"})
        rows.append(row)
        print(f"{label:32s} " + "  ".join(f"{n}={t:7.2f}ms" for n, t in ms.items()), flush=True)
    meta = {
        "benchmark": "bench_reference",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "processor": platform.processor() or platform.uname().machine,
        "repeats": args.repeats,
        "statistic": "median wall time, contenders interleaved",
        "dtype": "float32",
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_reference.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    names = [n for n in rows[0] if n.endswith(" / sdpa")]
    lines = [
        f"# Reference methods vs PyTorch SDPA (CPU, {meta['threads']} threads, torch {meta['torch']}, float32)",
        "",
        "| shape | causal | sdpa ms | " + " | ".join(names) + " |",
        "|---|---|---|" + "---|" * len(names),
    ]
    for r in rows:
        lines.append(
            f"| {r['shape']} | {r['causal']} | {r['sdpa ms']:.2f} | " + " | ".join(f"{r[n]:.2f}x" for n in names) + " |"
        )
    (args.out / "bench_reference.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out / 'bench_reference.json'} and .md")


if __name__ == "__main__":
    main()
