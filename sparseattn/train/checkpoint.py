"""Resumable fine-tuning runs: a run directory keyed by the content of its inputs, safetensors checkpoints written
atomically.

``<run>/run.json`` records the inputs' fingerprints (model weights, the two texts' content, method and its
validated parameters, the training settings that change the trajectory). A run directory whose inputs differ
from the ones given is refused, naming each input that changed; the same inputs resume from the latest
checkpoint. ``steps``, ``eval_every`` and ``save_every`` are not inputs: a finished run can be extended.

A checkpoint ``checkpoints/step-NNNNNN/`` holds ``trainable.safetensors`` (the trained weights: adapters,
detectors, or every weight for full fine-tuning), ``optimizer.safetensors`` (AdamW's moments and step counts) and
``state.json`` (the step, the loss log, the held-out evaluations, the optimizer's groups). It is written to a
temporary directory and renamed into place, then ``latest.json`` (written atomically) points to it, then older
checkpoints are removed: a kill at any moment leaves a complete checkpoint that ``latest.json`` names.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..core.errors import InvalidParameterError
from ..core.files import read_json_object, write_atomic

MANIFEST = "run.json"
LATEST = "latest.json"
VERSION = 1


class ChangedInputsError(InvalidParameterError):
    """A run directory was started with other inputs than the ones given to resume it."""


def weights_fingerprint(model: torch.nn.Module) -> str:
    """BLAKE2b of every parameter and buffer of ``model`` (names, dtypes, shapes and bytes)."""
    h = hashlib.blake2b(digest_size=16)
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def run_key(inputs: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class EvalPoint:
    """A held-out evaluation: mean loss per predicted token (nats) and density of the patched layers."""

    step: int
    loss: float
    density: float


@dataclass
class TrainState:
    """Where a run stands: the last step taken, its per-step training losses and its evaluations."""

    step: int = 0
    train_losses: list[float] = field(default_factory=list)
    evals: list[EvalPoint] = field(default_factory=list)
    seconds: float = 0.0  # training time over the steps taken, across resumes

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainState:
        return cls(step=int(data["step"]), train_losses=[float(x) for x in data["train_losses"]],
                   evals=[EvalPoint(**e) for e in data["evals"]], seconds=float(data["seconds"]))


def open_run(directory: Path, inputs: dict[str, str]) -> Path:
    """Create ``directory`` for a run of ``inputs``, or check that an existing one was started with them."""
    directory = Path(directory)
    manifest = directory / MANIFEST
    if manifest.exists():
        old = read_json_object(manifest, "fine-tuning run manifest",
                               " (delete the run directory or give another --out)").get("inputs", {})
        changed = [f"{k}: {old.get(k, '(absent)')!s} -> {inputs.get(k, '(absent)')!s}"
                   for k in sorted(set(old) | set(inputs)) if old.get(k) != inputs.get(k)]
        if changed:
            raise ChangedInputsError(
                f"run directory {str(directory)!r} was started with other inputs, so it cannot be resumed: "
                + "; ".join(changed) + ". Give another --out (or delete the directory to start over)")
        return directory
    if directory.exists() and any(directory.iterdir()):
        raise InvalidParameterError(f"run directory {str(directory)!r} is not empty and has no {MANIFEST}; "
                                    "give an empty or new directory")
    directory.mkdir(parents=True, exist_ok=True)
    write_atomic(manifest, json.dumps({"version": VERSION, "key": run_key(inputs), "inputs": inputs}, indent=1))
    return directory


def _flatten_optimizer(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, Any] = {}
    for idx, entries in state["state"].items():
        for name, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{idx}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{idx}.{name}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, value in [*tensors.items(), *meta["scalars"].items()]:
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The trained tensors of ``model`` by parameter name (those that require grad)."""
    return {n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad}


def save_checkpoint(directory: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    state: TrainState) -> Path:
    """Write the checkpoint of ``state.step`` atomically and point ``latest.json`` to it (module docstring)."""
    from safetensors.torch import save_file

    root = Path(directory) / "checkpoints"
    root.mkdir(exist_ok=True)
    name = f"step-{state.step:06d}"
    tmp = root / f".tmp-{name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file(trainable_state(model), str(tmp / "trainable.safetensors"))
    tensors, meta = _flatten_optimizer(optimizer.state_dict())
    save_file(tensors, str(tmp / "optimizer.safetensors"))
    (tmp / "state.json").write_text(json.dumps({"train": state.to_json(), "optimizer": meta}, indent=1))
    final = root / name
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    write_atomic(Path(directory) / LATEST, json.dumps({"step": state.step, "checkpoint": name}))
    for old in root.iterdir():
        if old.name != name:
            shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(directory: Path, model: torch.nn.Module,
                    optimizer: torch.optim.Optimizer) -> TrainState | None:
    """Restore the latest checkpoint of a run into ``model`` and ``optimizer``; ``None`` when there is none."""
    from safetensors.torch import load_file

    latest = Path(directory) / LATEST
    if not latest.exists():
        return None
    pointer = read_json_object(latest, "fine-tuning checkpoint pointer")
    ckpt = Path(directory) / "checkpoints" / str(pointer.get("checkpoint"))
    if not (ckpt / "state.json").is_file():
        raise InvalidParameterError(f"{str(latest)!r} names the checkpoint {ckpt.name!r}, which is missing; delete "
                                    "the run directory to start over")
    trained = load_file(str(ckpt / "trainable.safetensors"))
    params = dict(model.named_parameters())
    expected = {n for n, p in params.items() if p.requires_grad}
    if set(trained) != expected:
        raise InvalidParameterError(f"checkpoint {str(ckpt)!r} holds other trained weights than this run trains "
                                    f"({len(trained)} tensors vs {len(expected)})")
    with torch.no_grad():
        for name, t in trained.items():
            params[name].copy_(t)
    meta = json.loads((ckpt / "state.json").read_text())
    device = next(model.parameters()).device
    tensors = {k: v.to(device) if not k.endswith(".step") else v for k, v in
               load_file(str(ckpt / "optimizer.safetensors")).items()}
    optimizer.load_state_dict(_unflatten_optimizer(tensors, meta["optimizer"]))
    return TrainState.from_json(meta["train"])
