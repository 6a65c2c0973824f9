"""Every bad input gets a clear error, never a silent wrong answer: each case below is run, must raise a
``ValueError`` (or exit 2 from the CLI) whose message contains the expected words, and the README's bad-input
table is this list's output. ``UPDATE_README=1 pytest tests/test_bad_input.py`` rewrites the table."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import sparseattn
from sparseattn.cli import app
from sparseattn.core import Workload
from tests.helpers import random_qkv

README = Path(__file__).resolve().parents[1] / "README.md"
BEGIN, END = "<!-- bad-input-table:begin -->", "<!-- bad-input-table:end -->"


@dataclass
class Case:
    what: str  # the bad input, as a user would describe it
    run: Callable[[Path], object]  # raises (or returns a CLI result that exited 2)
    expect: str  # words the message must contain


def _pade_without_record(tmp: Path) -> object:
    from sparseattn.hw import load_arch, load_trace, simulate

    trace = load_trace("pade")
    trace.records.clear()
    return simulate(load_arch("pade"), trace)


def _trace_file(tmp: Path, edit: Callable[[dict], object]) -> Path:
    q, k, v = random_qkv(h=2, hkv=1, nq=32, nk=32, d=16)
    data = sparseattn.attention(q, k, v, "pade", causal=True).trace.to_json()
    edited = edit(data)  # edits in place, or returns a replacement document (a list, say)
    path = tmp / "trace.json"
    path.write_text(json.dumps(edited if isinstance(edited, list) else data))
    return path


def _cli(*args: str) -> Callable[[Path], object]:
    def run(tmp: Path) -> object:
        result = CliRunner().invoke(app, [a.replace("{tmp}", str(tmp)) for a in args], terminal_width=200)
        if result.exit_code != 2:
            raise AssertionError(f"exit code {result.exit_code}: {result.output}")
        raise ValueError(" ".join(result.output.split()))

    return run


def _qkv(**kw):
    return random_qkv(h=4, hkv=2, nq=16, nk=16, d=8, **kw)


def _grad_pade(tmp: Path) -> object:
    q, k, v = _qkv()
    with torch.enable_grad():
        return sparseattn.attention(q.requires_grad_(True), k, v, "pade", causal=True)


def _arch_file(tmp: Path, edit: Callable[[dict], object]) -> Path:
    import yaml

    from sparseattn.hw.schema import CONFIG_DIR

    data = yaml.safe_load((CONFIG_DIR / "pade.yaml").read_text())
    edit(data)
    path = tmp / "arch.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _load_arch(edit: Callable[[dict], object]) -> Callable[[Path], object]:
    from sparseattn.hw import load_arch

    return lambda tmp: load_arch(_arch_file(tmp, edit))


def _yaml(tmp: Path, text: str) -> Path:
    path = tmp / "run.yaml"
    path.write_text(text)
    return path


def _corrupt_results(tmp: Path) -> Path:
    (tmp / "run").mkdir()
    (tmp / "run" / "results.json").write_text('{"config": {"model": "smollm2-135m"}, "rows": [')
    return tmp / "run"


def _overflowing_key(tmp: Path) -> object:
    q, k, v = _qkv()
    k[0, 0, 3] = -3e38
    return sparseattn.attention(q, k, v, "dense")


def _tech_file(tmp: Path) -> Path:
    from sparseattn.hw.schema import CONFIG_DIR

    path = tmp / "tech.yaml"
    path.write_text((CONFIG_DIR / "technology.yaml").read_text())
    return path


def _file(tmp: Path, name: str = "file", text: str = "x") -> Path:
    path = tmp / name
    path.write_text(text)
    return path


def _mamba(tmp: Path) -> Path:
    (tmp / "mamba").mkdir()
    (tmp / "mamba" / "config.json").write_text(json.dumps(
        {"model_type": "mamba", "architectures": ["MambaForCausalLM"], "hidden_size": 32, "num_hidden_layers": 1}))
    return tmp / "mamba"


def _resume_changed_text(tmp: Path) -> object:
    from sparseattn.job.config import load_config
    from sparseattn.job.store import ResultStore

    text = _file(tmp, "t.txt", "Call me Ishmael. Some years ago, never mind how long precisely. " * 200)
    (tmp / "run").mkdir()
    ResultStore(tmp / "run", load_config(None, {"text": str(text), "quick": True}).effective()).save()
    text.write_text("It was the best of times, it was the worst of times. " * 200)
    return _cli("run", "--text", str(text), "--quick", "--resume", "--out", str(tmp / "run"))(tmp)


CASES = [
    Case("q of rank 3", lambda t: sparseattn.attention(_qkv()[0][0], *_qkv()[1:]), "must have rank 4"),
    Case("integer tensors", lambda t: sparseattn.attention(*(x.long() for x in _qkv())), "floating dtype"),
    Case("a NaN in k", lambda t: sparseattn.attention(_qkv()[0], _qkv()[1] * float("nan"), _qkv()[2]), "NaN/Inf"),
    Case("an empty sequence", lambda t: sparseattn.attention(*random_qkv(nq=0, nk=0)), "must not be empty"),
    Case("6 query heads on 4 KV heads", lambda t: sparseattn.attention(*random_qkv(h=6, hkv=4)),
         "multiple of key/value heads"),
    Case("causal with more queries than keys", lambda t: sparseattn.attention(*random_qkv(nq=8, nk=4), causal=True),
         "q_len <= k_len"),
    Case("an unknown method", lambda t: sparseattn.attention(*_qkv(), "topkk"), "unknown method 'topkk'"),
    Case("a parameter of another method", lambda t: sparseattn.attention(*_qkv(), "topk", delta=3),
         "unknown parameter(s) 'delta'"),
    Case("ratio out of range", lambda t: sparseattn.attention(*_qkv(), "topk", ratio=3.0), "less than or equal to 1"),
    Case("ratio=True (a bool as a number)", lambda t: sparseattn.attention(*_qkv(), "topk", ratio=True),
         "valid number"),
    Case("top-k with k above the number of keys", lambda t: sparseattn.attention(*_qkv(), "topk", k=17),
         "exceeds the 16 keys"),
    Case("200k tokens (the kept-pair mask alone is 37 GiB)",
         lambda t: sparseattn.attention(*(torch.zeros(1, 1, 200_000, 8),) * 3, "topk", causal=True),
         "needs about 37.6 GiB"),
    Case("gradients through an INT8 method", _grad_pade, "formal='exact'"),
    Case("a trace file missing read_basis",
         lambda t: Workload.load(_trace_file(t, lambda d: d.pop("read_basis"))), "no read_basis entry"),
    Case("a trace file missing shape.heads",
         lambda t: Workload.load(_trace_file(t, lambda d: d["shape"].pop("heads"))), "shape.heads: Field required"),
    Case("a trace file holding a list", lambda t: Workload.load(_trace_file(t, lambda d: [d])), "JSON object"),
    Case("a trace file with corrupt profile counts",
         lambda t: Workload.load(_trace_file(t, lambda d: d["profile"].update(counts_zlib_b64="AAAA"))),
         "not valid zlib-compressed base64"),
    Case("a trace file with a NaN count",
         lambda t: Workload.load(_trace_file(t, lambda d: d["ops"][0].update(count=float("nan")))), "ops.0.count"),
    Case("a trace file of format 1 (no format_version)",
         lambda t: Workload.load(_trace_file(t, lambda d: d.pop("format_version"))), "format 1"),
    Case("a trace file of format 2 (method records in meta)",
         lambda t: Workload.load(_trace_file(t, lambda d: d.update(format_version=2))), "upgrade_traces.py"),
    Case("a trace file with a typo'd record counter",
         lambda t: Workload.load(_trace_file(t, lambda d: d["records"]["bitplane_reads"].update(
             k_plane=d["records"]["bitplane_reads"].pop("k_planes")))), "k_plane"),
    Case("a PADE trace without its bit-plane reads, simulated", _pade_without_record, "needs the BitplaneReads"),
    Case("an architecture with clock_mhz: .inf", _load_arch(lambda d: d.update(clock_mhz=float("inf"))),
         "clock_mhz: Input should be a finite number"),
    Case("an architecture with ops_per_cycle {add: .nan}",
         _load_arch(lambda d: d["units"][0].update(ops_per_cycle={"add": float("nan")})), "finite number"),
    Case("an architecture with bits: true", _load_arch(lambda d: d["units"][0].update(bits=True)),
         "bits: a boolean is not a number"),
    Case("an architecture with vdd: 100", _load_arch(lambda d: d.update(vdd=100)),
         "vdd: Input should be less than or equal to 2"),
    Case("simulate with a zero query tile", _cli("simulate", "--arch", "sofa", "--q-tile", "0"),
         "formal.q: Input should be greater than 0"),
    Case("simulate options that do not apply to a GPU",
         _cli("simulate", "--arch", "h100", "--density", "5", "--trace", "nosuch", "--iso", "--q-tile", "3"),
         "do not apply to the GPU"),
    Case("simulate one token", _cli("simulate", "--arch", "sofa", "--seq", "1"), "at least 16 tokens"),
    Case("simulate --technology with a missing file",
         _cli("simulate", "--arch", "sofa", "--technology", "{tmp}/t.yaml"), "does not exist"),
    Case("simulate --csv into a missing directory", _cli("simulate", "--arch", "sofa", "--csv", "{tmp}/no/x.csv"),
         "does not exist"),
    Case("eval --json into a missing directory", _cli("eval", "--json", "{tmp}/nodir/x.json"), "does not exist"),
    Case("sweep resuming from a corrupt results.json",
         lambda t: _cli("sweep", "--out", str(_corrupt_results(t)), "--tokens", "64")(t), "--restart"),
    Case("run with an unknown text", _cli("run", "--text", "hamlet", "--out", "{tmp}/r"), "unknown text"),
    Case("run resuming a corrupt results.json",
         lambda t: _cli("run", "--out", str(_corrupt_results(t)), "--resume", "--quick")(t), "--restart"),
    Case("run.yaml with an unknown key", lambda t: _cli("run", "--config", str(_yaml(t, "tokens: 64\ntexts: x\n")))(t),
         "texts: Extra inputs are not permitted"),
    Case("a finite key row at -3e38 (its logits overflow float32)", _overflowing_key, "could overflow"),
    Case("a trace file with no op counts", lambda t: Workload.load(_trace_file(t, lambda d: d.update(ops=[]))),
         "ops: List should have at least 1 item"),
    Case("simulate 2**40 tokens", _cli("simulate", "--arch", "sofa", "--seq", str(2**40)), "validated up to"),
    Case("simulate a GPU with --technology", lambda t: _cli("simulate", "--arch", "h100", "--technology",
                                                            str(_tech_file(t)))(t), "--technology do not apply"),
    Case("spatial at 2e12 tokens", _cli("spatial", "--seq", str(2 * 10**12), "--no-scaling", "--out", "{tmp}/o"),
         "validated up to"),
    Case("dse run --n-trials 0", _cli("dse", "run", "star-tiling", "--n-trials", "0"), "--n-trials 0: must be"),
    Case("dse run with an unknown storage scheme", _cli("dse", "run", "star-tiling", "--storage", "foo://x"),
         "unknown database scheme"),
    Case("run --out below a file", lambda t: _cli("run", "--quick", "--out", str(_file(t) / "sub"))(t), "is a file"),
    Case("an empty .gguf model", lambda t: _cli("eval", "--model", str(_file(t, "m.gguf", "")))(t), "is empty"),
    Case("a model without attention (Mamba)", lambda t: _cli("eval", "--model", str(_mamba(t)))(t),
         "has no attention heads"),
    Case("run --resume after the text file changed", _resume_changed_text, "the text changed"),
]


def _outcome(case: Case, tmp: Path) -> str:
    with pytest.raises(ValueError) as info:
        case.run(tmp)
    message = " ".join(str(info.value).split())
    assert case.expect in message, (case.what, message)
    return message


def _table(rows: list[tuple[str, str]]) -> str:
    def cell(text: str) -> str:
        text = re.sub(r"\s+", " ", text).replace("|", "\\|")
        return text if len(text) <= 150 else text[:147] + "..."

    lines = ["| bad input | error (first words) |", "|---|---|"]
    lines += [f"| {cell(w)} | {cell(m)} |" for w, m in rows]
    return "\n".join(lines)


def test_every_bad_input_gets_a_clear_error_and_the_readme_lists_them(tmp_path):
    rows = []
    for i, case in enumerate(CASES):
        tmp = tmp_path / str(i)
        tmp.mkdir()
        rows.append((case.what, _outcome(case, tmp).replace(str(tmp), "<tmp>")))
    table = _table(rows)
    text = README.read_text()
    block = f"{BEGIN}\n{table}\n{END}"
    if os.environ.get("UPDATE_README"):
        README.write_text(re.sub(re.escape(BEGIN) + r".*?" + re.escape(END), lambda m: block, text, flags=re.S))
        text = README.read_text()
    assert block in text, "README's bad-input table is stale: run UPDATE_README=1 pytest tests/test_bad_input.py"
