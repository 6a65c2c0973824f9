"""``sparseattn finetune``: sparse-aware fine-tuning, beside the dense model fine-tuned identically."""

from __future__ import annotations

import json
import math
from pathlib import Path

import typer
from rich.table import Table

from ..core.errors import SparseAttnError
from ..core.files import check_writable, write_atomic
from ._app import app, console, fail
from .options import flag, parse_method_options


@app.command(
    "finetune",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def finetune_cmd(
    ctx: typer.Context,
    steps: int = typer.Option(..., help="optimizer steps (one window of --tokens per step and process)"),
    method: str = typer.Option("sofa", help="method in every attention layer (see `sparseattn methods`)"),
    model: str = typer.Option("smollm2-135m", help="bundled model, a .gguf file, a Hugging Face directory or a "
                              "cached model id (a causal LM)"),
    train_text: str = typer.Option("sotu", help="text to train on: bundled (sotu, moby-dick), a UTF-8 file or a "
                                   "string"),
    eval_text: str = typer.Option("moby-dick", help="held-out text the losses are measured on"),
    tokens: int = typer.Option(512, help="tokens per window, BOS included"),
    eval_every: int = typer.Option(None, help="held-out evaluation every this many steps (default steps/4)"),
    save_every: int = typer.Option(None, help="checkpoint every this many steps (default: --eval-every)"),
    eval_windows: int = typer.Option(1, help="held-out windows per evaluation"),
    lr: float = typer.Option(2e-4, help="AdamW learning rate"),
    full: bool = flag(False, "full", help="train every weight instead of LoRA adapters"),
    lora_rank: int = typer.Option(8, help="LoRA rank"),
    lora_alpha: float = typer.Option(8.0, help="LoRA alpha"),
    seed: int = typer.Option(0, help="seed of the adapters and of the window order"),
    out: Path = typer.Option(None, help="run directory (default runs/finetune/<method>-<input key>); a run with the "
                             "same inputs resumes from its latest checkpoint"),
    compare: bool = flag(True, "compare", help="also fine-tune the dense model identically and report the recovery"),
    device: str = typer.Option("auto", help="auto (Accelerate's choice), cpu or cuda"),
    backend: str = typer.Option("auto", help="attend step: auto (flex on CUDA, sdpa elsewhere), sdpa or flex"),
    json_out: Path = typer.Option(None, "--json", help="write the results as JSON here"),
) -> None:
    """Fine-tune MODEL with METHOD in every attention layer (selection without gradient, attention over the kept
    pairs with it; LoRA by default) and report the held-out loss before and after, beside the dense model
    fine-tuned identically. Method parameters follow as options, e.g. `sparseattn finetune --steps 40 --method
    sofa --k 0.1`. Several processes: `accelerate launch --multi_gpu $(which sparseattn) finetune ...` (GPUs) or
    `torchrun --nproc_per_node N $(which sparseattn) finetune ...` (CPUs).
    """
    from ..train import compare_with_dense, finetune, make_config

    try:
        check_writable(json_out, "--json")
        params = parse_method_options(list(ctx.args))
        config = make_config(model=model, method=method, params=params, train_text=train_text, eval_text=eval_text,
                             tokens=tokens, steps=steps, eval_every=eval_every, save_every=save_every,
                             eval_windows=eval_windows, lr=lr, full=full, lora_rank=lora_rank, lora_alpha=lora_alpha,
                             seed=seed, out=out, device=device, backend=backend)
        if compare and method != "dense":
            recovery = compare_with_dense(config)
            runs, payload = [recovery.dense, recovery.sparse], recovery.to_dict()
        else:
            recovery = None
            result = finetune(config)
            runs, payload = [result], result.to_dict()
    except SparseAttnError as err:
        fail(str(err))
        return
    from accelerate import PartialState

    if not PartialState().is_main_process:  # one report per launch
        return
    _table(runs, recovery)
    if json_out is not None:
        write_atomic(json_out, json.dumps(payload, indent=1))


def _table(runs: list, recovery) -> None:
    first = runs[0]
    table = Table(title=f"{first.record.model}: {first.record.steps} steps on {first.record.train_text}, "
                  f"held-out {first.eval_text} ({first.record.tokens} tokens), {first.record.adapter}")
    for col in ("method", "parameters", "ppl before", "ppl after", "density", "s/step", "saved to"):
        table.add_column(col)
    for r in runs:
        ps = ", ".join(f"{k}={v}" for k, v in r.record.params.items()
                       if k in ("k", "ratio", "keep", "Tc") and v is not None) or "-"
        table.add_row(r.record.method, ps, f"{r.ppl_before:.3f}", f"{r.ppl_after:.3f}", f"{r.density:.3f}",
                      f"{r.seconds_per_step:.2f}", r.final_dir)
    console.print(table)
    if recovery is not None:
        rec = "-" if math.isnan(recovery.recovered) else f"{100 * recovery.recovered:.0f}%"
        console.print(f"vs dense: {100 * recovery.ppl_change_before:+.2f}% before fine-tuning, "
                      f"{100 * recovery.ppl_change_after:+.2f}% after (the dense model fine-tuned identically); "
                      f"gap recovered: {rec}")
