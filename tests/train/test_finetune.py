"""Fine-tuning a tiny random Llama end to end: the loss falls, runs resume after an interrupt or a kill without
losing or repeating a step, changed inputs are refused, the saved model reloads to the same losses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from sparseattn.eval.perplexity import perplexity_of_ids
from sparseattn.train import ChangedInputsError, StepReport, finetune, load_finetuned
from sparseattn.train.data import read_text, text_windows

SOFA = {"k": 0.25, "min_keys": 4}


@pytest.fixture(autouse=True)
def _grad_mode():
    """Grad mode on (the session's model fixture turns it off); finetune turns it on where it trains anyway."""
    with torch.enable_grad():
        yield


def _run(tiny_llama, out, **kw):
    fields = dict(model=tiny_llama, method="sofa", params=SOFA, tokens=48, steps=4, lr=1e-2, out=out,
                  progress=False)
    fields.update(kw)
    return finetune(**fields)


def test_sparse_finetuning_lowers_the_held_out_loss(tiny_llama, tmp_path):
    """A random model learns fastest with every weight trained (LoRA on its random attention moves it by a few
    hundredths of a nat in these steps: the LoRA runs below check the rest)."""
    r = _run(tiny_llama, tmp_path / "run", steps=8, eval_every=4, full=True, lr=1e-3)
    assert [e.step for e in r.evals] == [0, 4, 8]
    assert r.loss_after < r.loss_before - 0.05  # measurably lower on the held-out text (5% in perplexity)
    assert 0 < r.density < 0.6  # the sparse method really ran
    assert len(r.train_losses) == 8 and all(x > 0 for x in r.train_losses)
    assert r.record.method == "sofa" and r.record.params["k"] == 0.25 and r.record.adapter == "full fine-tuning"
    assert (Path(r.final_dir) / "weights.safetensors").is_file()
    loaded = load_finetuned(r.final_dir).model.model
    assert torch.equal(loaded.lm_head.weight, r.model.lm_head.weight.cpu())


def test_the_saved_model_reloads_and_the_reference_method_gives_the_training_path_loss(tiny_llama, tmp_path):
    r = _run(tiny_llama, tmp_path / "run", steps=3)
    assert r.record.adapter.startswith("LoRA")
    loaded = load_finetuned(r.final_dir)
    assert loaded.record == r.record and "+finetuned:" in loaded.model.name
    window = text_windows(loaded.model.tokenizer, read_text("moby-dick", "eval")[0], 48, "eval", limit=1)
    with torch.no_grad():
        ref = perplexity_of_ids(loaded.model, window, "sofa", **SOFA)  # the reference SOFA, through models.patch
    assert ref.nll == pytest.approx(r.loss_after, rel=1e-5)
    assert ref.density == pytest.approx(r.density)


def _trained(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run_dir / "final" / "adapter_model.safetensors"))


def test_an_interrupt_at_a_step_resumes_without_losing_or_repeating_a_step(tiny_llama, tmp_path):
    whole = _run(tiny_llama, tmp_path / "whole", steps=6, save_every=1)

    def stop_at_3(report: StepReport) -> None:
        if report.step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _run(tiny_llama, tmp_path / "cut", steps=6, save_every=1, on_step=stop_at_3)
    assert json.loads((tmp_path / "cut" / "latest.json").read_text())["step"] == 3
    resumed = _run(tiny_llama, tmp_path / "cut", steps=6, save_every=1)
    assert resumed.train_losses == whole.train_losses  # each step once, the same steps
    assert [e.step for e in resumed.evals] == [e.step for e in whole.evals]
    a, b = _trained(tmp_path / "whole"), _trained(tmp_path / "cut")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


KILLED_RUN = """
import sys
from sparseattn.train import finetune
finetune(model=sys.argv[1], method="topk", params={"ratio": 0.5}, tokens=48, steps=int(sys.argv[3]), lr=1e-2,
         out=sys.argv[2], save_every=1, progress=False)
"""


@pytest.mark.slow  # a subprocess that imports torch and transformers, then two more runs (~30-70 s on 2 cores)
def test_a_killed_run_resumes_without_losing_or_repeating_a_step(tiny_llama, tmp_path):
    steps = 20
    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen([sys.executable, "-c", KILLED_RUN, tiny_llama, str(out), str(steps)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    latest = out / "latest.json"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if latest.exists() and json.loads(latest.read_text())["step"] >= 2:
            break
        time.sleep(0.02)
    assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = json.loads(latest.read_text())["step"]
    assert 2 <= killed_at < steps
    fields = dict(method="topk", params={"ratio": 0.5}, steps=steps, save_every=1)
    resumed = _run(tiny_llama, out, **fields)
    whole = _run(tiny_llama, tmp_path / "whole", **fields)
    assert len(resumed.train_losses) == steps
    assert resumed.train_losses == whole.train_losses
    a, b = _trained(out), _trained(tmp_path / "whole")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_resume_with_changed_inputs_is_refused_naming_them(tiny_llama, tmp_path, tmp_path_factory):
    _run(tiny_llama, tmp_path / "run", steps=1)
    with pytest.raises(ChangedInputsError, match=r"optimizer: AdamW lr=0\.01.*-> AdamW lr=0\.001") as err:
        _run(tiny_llama, tmp_path / "run", steps=1, lr=1e-3)
    text = tmp_path / "train.txt"
    text.write_text(read_text("sotu", "t")[0][:20000] + " changed", encoding="utf-8")
    with pytest.raises(ChangedInputsError, match="train_text") as err:
        _run(tiny_llama, tmp_path / "run", steps=1, train_text=str(text))
    assert "params" not in str(err.value)
    with pytest.raises(ChangedInputsError, match="params"):
        _run(tiny_llama, tmp_path / "run", steps=1, params={"k": 0.5, "min_keys": 4})
    # the same inputs with more steps extend the run
    longer = _run(tiny_llama, tmp_path / "run", steps=2)
    assert len(longer.train_losses) == 2
    with pytest.raises(ValueError, match="already at step 2"):
        _run(tiny_llama, tmp_path / "run", steps=1)


@pytest.mark.parametrize(("change", "message"), [
    ({"method": "nonesuch"}, "unknown method 'nonesuch'"),
    ({"steps": 0}, "steps"),
    ({"steps": -3}, "steps"),
    ({"train_text": "/no/such/file.txt"}, "train_text"),
    ({"eval_text": "hamlet"}, "eval_text: unknown text 'hamlet'"),
    ({"params": {"k": 2.0}}, "invalid parameters for method 'sofa'"),
    ({"params": {"ratio": 0.1}}, "unknown parameter"),
    ({"method": "spatten", "params": {}}, "gradient"),
    ({"tokens": 1}, "tokens"),
    ({"eval_windows": 10_000}, "windows"),
    ({"lora_targets": ("no_such_proj",)}, "lora_targets"),
    ({"lr": float("nan")}, "lr"),
    ({"method": "dense", "params": {"k": 0.1}}, "unknown parameter"),
    ({"backend": "flex", "device": "cpu"}, "backend='flex' trains on CUDA only"),
])
def test_bad_input_gets_a_clear_error(tiny_llama, tmp_path, change, message):
    with pytest.raises(ValueError, match=message):
        _run(tiny_llama, tmp_path / "run", **change)


def test_dota_trains_its_detector_and_the_reference_uses_it(tiny_llama, tmp_path):
    params = {"keep": 0.3, "min_keys": 4, "rank": 4}
    r = _run(tiny_llama, tmp_path / "run", method="dota", params=params, steps=6)
    learned = load_file(str(Path(r.final_dir) / "detector.safetensors"))
    from sparseattn.methods.dota import ternary_projection

    start = ternary_projection(16, 4, 0)
    assert sorted(learned) == ["layer.0", "layer.1"]
    assert all(not torch.equal(t, start) for t in learned.values())  # trained away from the random projection
    loaded = load_finetuned(r.final_dir)
    window = text_windows(loaded.model.tokenizer, read_text("moby-dick", "eval")[0], 48, "eval", limit=1)
    with torch.no_grad():
        ref = perplexity_of_ids(loaded.model, window, "dota", capture_traces=True, **params)
    assert ref.nll == pytest.approx(r.loss_after, rel=1e-5)
    assert "learned projection" in ref.traces[0].meta["note"]


def test_the_detection_loss_falls_as_the_detector_trains():
    from sparseattn.core.call import AttentionCall
    from sparseattn.core.validation import validate_qkv
    from sparseattn.methods.dota import ternary_projection
    from sparseattn.train.detector import detection_loss
    from tests.helpers import random_qkv

    q, k, v = random_qkv(h=4, hkv=2, nq=64, nk=64, d=16, seed=3)
    shape, scale = validate_qkv(q, k, v, True)
    call = AttentionCall(q=q, k=k, v=v, shape=shape, scale=scale)
    p = torch.nn.Parameter(ternary_projection(16, 4, 0))
    opt = torch.optim.Adam([p], lr=1e-2)
    first = detection_loss(call, p).item()
    for _ in range(50):
        opt.zero_grad()
        detection_loss(call, p).backward()
        opt.step()
    assert detection_loss(call, p).item() < 0.8 * first
