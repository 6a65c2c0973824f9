"""Sparse-aware fine-tuning: :func:`finetune` (SOFA's pre-deployment "top-k fine-tune", SOFA §V-A, Fig. 16).

The model is fine-tuned with the method in every attention layer on the training path of :mod:`.attend`
(selection without gradient, attention over the kept pairs with it), LoRA adapters by default
(:mod:`.config`), under Hugging Face Accelerate: the same code runs on one CPU, one GPU or several processes
(``accelerate launch --multi_gpu $(which sparseattn) finetune ...`` on GPUs, ``torchrun --nproc_per_node N
$(which sparseattn) finetune ...`` on CPUs; each process trains on its own windows and the gradients are
averaged). ``method="dense"`` fine-tunes the model with its own attention: the reference a sparse run is
compared with (:func:`compare_with_dense`).

Each run lives in a directory keyed by its inputs (:mod:`.checkpoint`): it resumes after a kill from the latest
checkpoint and refuses inputs that changed. Held-out evaluations (before step 1, every ``eval_every`` steps, after
the last) use the same training path without gradient, whose forward equals the reference method's
(``tests/train/test_attend.py``). The trained adapter (or weights) and detectors are saved to ``<run>/final``
for reuse (:func:`~.adapter.load_finetuned`).
"""

from __future__ import annotations

import copy
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..core.errors import InvalidParameterError
from ..methods.registry import parse_params
from ..models.loader import LoadedModel, load_model
from .adapter import save_finetuned
from .binding import TrainingPatch, bind
from .checkpoint import EvalPoint, TrainState, load_checkpoint, open_run, run_key, save_checkpoint, weights_fingerprint
from .config import FinetuneConfig, make_config
from .data import read_text, text_windows, window_index
from .detector import attach_detectors, detection_loss, has_detector
from .result import FinetuneRecord, FinetuneResult, Recovery, check_finite

RUNS = Path("runs") / "finetune"


@dataclass(frozen=True)
class StepReport:
    """What a step callback receives after each optimizer step."""

    step: int
    steps: int
    loss: float


@dataclass
class _Run:
    """A prepared run: the model, its windows and where it is stored."""

    config: FinetuneConfig
    lm: LoadedModel
    train: torch.Tensor
    held_out: torch.Tensor
    inputs: dict[str, str]
    directory: Path
    record: FinetuneRecord
    eval_label: str


def _inputs(config: FinetuneConfig, lm: LoadedModel, train: tuple[str, str], held: tuple[str, str],
            world: int) -> dict[str, str]:
    params = "{}" if config.method == "dense" else parse_params(config.method, config.params).model_dump_json()
    detector = has_detector(config.method) and config.train_detector
    return {
        "model": f"{config.model} (weights blake2b {weights_fingerprint(lm.model)})",
        "train_text": f"{train[0]} (sha256 {train[1]})",
        "eval_text": f"{held[0]} (sha256 {held[1]})",
        "method": config.method,
        "params": params,
        "tokens": str(config.tokens),
        "eval_windows": str(config.eval_windows),
        "optimizer": f"AdamW lr={config.lr!r} weight_decay={config.weight_decay!r}",
        "adapter": config.adapter,
        "detector": f"trained, Adam lr={config.detector_lr!r}" if detector else "none",
        "seed": str(config.seed),
        "processes": str(world),
    }


def _prepare(config: FinetuneConfig, world: int) -> _Run:
    train_content, train_label, train_sha = read_text(config.train_text, "train_text")
    eval_content, eval_label, eval_sha = read_text(config.eval_text, "eval_text")
    lm = load_model(config.model)
    if lm.kind != "decoder":
        raise InvalidParameterError(f"model {config.model!r} is an encoder; fine-tuning needs a causal LM")
    if lm.max_tokens and config.tokens > lm.max_tokens:
        raise InvalidParameterError(f"tokens={config.tokens} exceeds {config.model}'s context of {lm.max_tokens}")
    train = text_windows(lm.tokenizer, train_content, config.tokens, f"train_text {train_label!r}")
    held_out = text_windows(lm.tokenizer, eval_content, config.tokens, f"eval_text {eval_label!r}",
                            limit=config.eval_windows)
    inputs = _inputs(config, lm, (train_label, train_sha), (eval_label, eval_sha), world)
    key = run_key(inputs)
    directory = Path(config.out) if config.out is not None else RUNS / f"{config.method}-{key}"
    params = {} if config.method == "dense" else parse_params(config.method, config.params).model_dump()
    record = FinetuneRecord(model=config.model, method=config.method, params=params, train_text=train_label,
                            train_sha256=train_sha, tokens=config.tokens, steps=config.steps, adapter=config.adapter,
                            detector=has_detector(config.method) and config.train_detector, seed=config.seed, key=key)
    return _Run(config, lm, train, held_out, inputs, directory, record, eval_label)


def _trainable_model(run: _Run, device: torch.device) -> tuple[Any, TrainingPatch | None, list, list]:
    """A private copy of the model with the method bound, adapters (or every weight) and detectors trainable."""
    config = run.config
    model = copy.deepcopy(run.lm.model).to(device)
    model.requires_grad_(False)
    torch.manual_seed(config.seed)
    binding = None
    if config.method != "dense":
        loss = detection_loss if has_detector(config.method) and config.train_detector else None
        binding = bind(model, config.method, config.params, backend=config.backend, detection_loss=loss)
    if config.full:
        model.requires_grad_(True)
    else:
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(r=config.lora_rank, lora_alpha=config.lora_alpha, lora_dropout=0.0,
                          target_modules=list(config.lora_targets))
        try:
            with warnings.catch_warnings():  # peft calls a transformers property deprecated in 5.x
                warnings.simplefilter("ignore", FutureWarning)
                model = get_peft_model(model, lora)
        except ValueError as err:
            raise InvalidParameterError(f"lora_targets {list(config.lora_targets)}: {err}") from None
    weights = [p for p in model.parameters() if p.requires_grad]
    dets: list = []
    if binding is not None and binding.detection_loss is not None:
        dets = attach_detectors(model, int(parse_params(config.method, config.params).rank), config.seed)
    return model, binding, weights, dets


def held_out_loss(model: Any, windows: torch.Tensor, binding: TrainingPatch | None) -> EvalPoint:
    """Mean held-out loss over ``windows`` (no gradient) and the density of the patched layers (1 for dense)."""
    was_training = model.training
    model.eval()
    if binding is not None:
        binding.reset()
    device = next(model.parameters()).device
    with torch.no_grad():
        losses = [float(model(input_ids=w[None].to(device), labels=w[None].to(device)).loss) for w in windows]
    model.train(was_training)
    density = binding.density if binding is not None else 1.0
    if binding is not None:
        binding.reset()
    return EvalPoint(step=0, loss=check_finite(sum(losses) / len(losses), "the held-out loss"), density=density)


def finetune(config: FinetuneConfig | None = None, *, progress: bool = True,
             on_step: Callable[[StepReport], None] | None = None, **fields: Any) -> FinetuneResult:
    """Fine-tune ``config.model`` with ``config.method`` in every attention layer (module docstring).

    Pass a :class:`FinetuneConfig` or its fields as keywords (``finetune(method="sofa", params={"k": 0.1},
    steps=40)``). ``on_step`` is called after every step (a progress hook; an exception it raises stops the run,
    which resumes from its latest checkpoint when called again).
    """
    if config is None:
        config = make_config(**fields)
    elif fields:
        raise InvalidParameterError("give a FinetuneConfig or keyword fields, not both")
    from accelerate import Accelerator

    if config.device == "cuda" and not torch.cuda.is_available():
        raise InvalidParameterError("device='cuda' requested but no CUDA device is available")
    # cpu=True also on a machine without CUDA under "auto": Accelerate then joins a torchrun/MPI launch (gloo)
    accelerator = Accelerator(cpu=config.device == "cpu" or not torch.cuda.is_available())
    run = _prepare(config, accelerator.num_processes)
    if accelerator.is_main_process:
        open_run(run.directory, run.inputs)
    accelerator.wait_for_everyone()
    model, binding, weights, dets = _trainable_model(run, accelerator.device)
    optimizer = _optimizer(config, weights, dets)
    model, optimizer = accelerator.prepare(model, optimizer)
    plain = accelerator.unwrap_model(model)
    state = load_checkpoint(run.directory, plain, optimizer) or TrainState()
    if state.step > config.steps:
        raise InvalidParameterError(f"run {str(run.directory)!r} is already at step {state.step} > steps="
                                    f"{config.steps}; give steps >= {state.step}")
    if not state.evals:
        state.evals.append(_evaluate(plain, run, binding, 0))
    _train(model, plain, optimizer, accelerator, run, binding, state, progress, on_step)
    final = run.directory / "final"
    if accelerator.is_main_process:
        save_finetuned(plain, final, run.record)
    accelerator.wait_for_everyone()
    return FinetuneResult(record=run.record, eval_text=run.eval_label, loss_before=state.evals[0].loss,
                          loss_after=state.evals[-1].loss, density=state.evals[-1].density,
                          train_losses=state.train_losses, evals=state.evals,
                          seconds_per_step=state.seconds / max(1, state.step), run_dir=str(run.directory),
                          final_dir=str(final), model=plain)


def _evaluate(model: Any, run: _Run, binding: TrainingPatch | None, step: int) -> EvalPoint:
    point = held_out_loss(model, run.held_out, binding)
    point.step = step
    return point


def _train(model: Any, plain: Any, optimizer: Any, accelerator: Any, run: _Run, binding: TrainingPatch | None,
           state: TrainState, progress: bool, on_step: Callable[[StepReport], None] | None) -> None:
    """Steps ``state.step + 1 .. config.steps``: one window per process, evaluations and checkpoints on the way."""
    config = run.config
    bar = _Bar(progress and accelerator.is_main_process, config, state.step)
    model.train()
    with bar:
        for step in range(state.step + 1, config.steps + 1):
            start = time.perf_counter()
            loss = _step(model, optimizer, accelerator, run, binding, step)
            state.seconds += time.perf_counter() - start
            state.step = step
            state.train_losses.append(check_finite(loss, f"the training loss at step {step}"))
            if step % config.every_eval == 0 or step == config.steps:
                state.evals.append(_evaluate(plain, run, binding, step))
                model.train()
            if (step % config.every_save == 0 or step == config.steps) and accelerator.is_main_process:
                save_checkpoint(run.directory, plain, optimizer, state)
            accelerator.wait_for_everyone()
            bar.advance(loss, state.evals[-1])
            if on_step is not None:
                on_step(StepReport(step, config.steps, loss))


def _step(model: Any, optimizer: Any, accelerator: Any, run: _Run, binding: TrainingPatch | None,
          step: int) -> float:
    """One optimizer step on this process's window; returns the language-model loss averaged over processes."""
    config = run.config
    i = window_index(step, accelerator.process_index, accelerator.num_processes, len(run.train), config.seed)
    ids = run.train[i][None].to(accelerator.device)
    loss = _forward_backward(model, ids, binding, accelerator.backward)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return float(accelerator.gather(loss.detach()[None]).mean())


def _optimizer(config: FinetuneConfig, weights: list, dets: list) -> torch.optim.Optimizer:
    """AdamW over the trained weights at ``lr``, and over the detectors (if any) at ``detector_lr``."""
    groups = [{"params": weights, "lr": config.lr, "weight_decay": config.weight_decay}]
    if dets:
        groups.append({"params": dets, "lr": config.detector_lr, "weight_decay": 0.0})
    return torch.optim.AdamW(groups)


def _forward_backward(model: Any, ids: torch.Tensor, binding: TrainingPatch | None,
                      backward: Callable[[torch.Tensor], Any]) -> torch.Tensor:
    """The language-model loss of ``ids``, back-propagated with the detection losses of the call (if any)."""
    if binding is not None:
        binding.reset()
    with torch.enable_grad():
        loss = model(input_ids=ids, labels=ids).loss
        total = loss + torch.stack(binding.detection).sum() if binding is not None and binding.detection else loss
        backward(total)
    return loss


class _Bar:
    """A rich progress bar (step i/N, ETA, last loss and held-out loss), or nothing."""

    def __init__(self, show: bool, config: FinetuneConfig, done: int) -> None:
        self.progress = None
        if show:
            from rich import progress as rp

            self.progress = rp.Progress(rp.TextColumn("{task.description}"), rp.BarColumn(), rp.MofNCompleteColumn(),
                                        rp.TextColumn("loss {task.fields[loss]} held-out {task.fields[held]}"),
                                        rp.TimeElapsedColumn(), rp.TextColumn("ETA"), rp.TimeRemainingColumn())
            self.task = self.progress.add_task(f"finetune {config.method}", total=config.steps, completed=done,
                                               loss="-", held="-")

    def __enter__(self) -> _Bar:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def advance(self, loss: float, last: EvalPoint) -> None:
        if self.progress is not None:
            self.progress.update(self.task, advance=1, loss=f"{loss:.3f}", held=f"{last.loss:.3f}@{last.step}")


def step_timer(config: FinetuneConfig) -> Callable[[], float]:
    """A closure running one training step of ``config`` on its first window (model built exactly as
    :func:`finetune` builds it, on one process, nothing saved): what benchmarks time side by side."""
    if config.device == "cuda" and not torch.cuda.is_available():
        raise InvalidParameterError("device='cuda' requested but no CUDA device is available")
    device = torch.device("cuda" if config.device != "cpu" and torch.cuda.is_available() else "cpu")
    run = _prepare(config, 1)
    model, binding, weights, dets = _trainable_model(run, device)
    optimizer = _optimizer(config, weights, dets)
    model.train()
    ids = run.train[0][None].to(device)

    def step() -> float:
        loss = _forward_backward(model, ids, binding, torch.Tensor.backward)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return float(loss.detach())

    return step


def compare_with_dense(config: FinetuneConfig | None = None, *, progress: bool = True,
                       **fields: Any) -> Recovery:
    """Fine-tune the dense model and the sparse one identically (same data, steps, seed, adapter) and return the
    :class:`Recovery` of the sparse one on the held-out text."""
    if config is None:
        config = make_config(**fields)
    if config.method == "dense":
        raise InvalidParameterError("compare_with_dense needs a sparse method, got method='dense'")
    dense_out = None if config.out is None else Path(config.out).with_name(Path(config.out).name + "-dense")
    dense = finetune(config.model_copy(update={"method": "dense", "params": {}, "out": dense_out}),
                     progress=progress)
    sparse = finetune(config, progress=progress)
    return Recovery(dense=dense, sparse=sparse)
