"""CLI fuzz: every command's options drawn from good and hostile values (0, negative, huge, paths through files
and missing directories). Each invocation either exits 2 with a one-line ``error:`` naming the problem (or
Typer's own usage error), or succeeds with output that holds the result invariants; never a traceback. Example
counts are modest so the whole file runs in well under two minutes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from sparseattn.cli import app
from sparseattn.core.invariants import check_tree

runner = CliRunner()
HOSTILE_INTS = st.sampled_from(["0", "-1", "-3", "1", "16", "100", "4096", str(2**31), str(2**40), "1e3", "x"])
PATHS = st.sampled_from(["{tmp}/ok", "{tmp}/file", "{tmp}/file/sub", "{tmp}/missing/dir/x", "{tmp}"])
SETTINGS = settings(max_examples=12, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _opts(**strategies) -> st.SearchStrategy[list[str]]:
    """Any subset of the options, each with a drawn value."""
    pairs = [st.tuples(st.just(f"--{k.replace('_', '-')}"), v) for k, v in strategies.items()]
    return st.lists(st.one_of(*pairs), max_size=4, unique_by=lambda p: p[0]).map(
        lambda ps: [x for p in ps for x in p])


def _invoke(tmp: Path, args: list[str]):
    (tmp / "file").write_text("x")
    args = [a.replace("{tmp}", str(tmp)) for a in args]
    result = runner.invoke(app, args, terminal_width=200)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"{args}: traceback {type(result.exception).__name__}: {result.exception}")
    assert result.exit_code in (0, 2), (args, result.exit_code, result.output)
    text = result.output
    assert "Traceback" not in text, (args, text)
    if result.exit_code == 2:
        lines = [ln for ln in text.splitlines() if ln.strip()]
        assert lines, args
        assert lines[0].startswith("error:") or "Usage:" in text or "Invalid value" in text, (args, text)
    else:
        assert not re.search(r"(?<![a-z])(nan|-?inf)(?![a-z])", text.lower()), (args, text)
        assert not re.search(r"\s-\d[\d.e+]*\s", text.split("energy by component")[0]), (args, text)
    return result, args


@SETTINGS
@given(arch=st.sampled_from(["sofa", "pade", "h100", "spatial-star-2x2", "nosuch"]),
       opts=_opts(seq=HOSTILE_INTS, batch=HOSTILE_INTS, q_tile=HOSTILE_INTS, density=st.sampled_from(
           ["0", "-0.5", "0.3", "1", "2", "nan"]), json=PATHS, csv=PATHS, technology=PATHS))
def test_simulate_fuzz(tmp_path, arch, opts):
    result, args = _invoke(tmp_path, ["simulate", "--arch", arch, *opts])
    if result.exit_code == 0 and "--json" in args:
        check_tree(json.loads(Path(args[args.index("--json") + 1]).read_text()), "simulate --json")


@SETTINGS
@given(opts=_opts(seq=st.sampled_from(["-1", "0", "16", "100", "512", str(2**40)]), out=PATHS,
                  design=st.sampled_from(["spatial-star", "dense-flash", "nosuch"])))
def test_spatial_fuzz(tmp_path, opts):
    if "--seq" not in opts:
        opts += ["--seq", "256"]
    _invoke(tmp_path, ["spatial", "--arch", "spatial-star-2x2", "--shape", "llama2-7b", "--no-scaling",
                       "--out", "{tmp}/sp", *opts])


@SETTINGS
@given(opts=_opts(n_trials=st.sampled_from(["-3", "0", "1", "x"]), workers=st.sampled_from(["-1", "0", "1"]),
                  batch=st.sampled_from(["-1", "0", "1"]), seq=st.sampled_from(["-5", "5", "16", str(2**40)]),
                  storage=st.sampled_from(["memory", "foo://x", "sqlite:///{tmp}/missing/x.db", "not a url"]),
                  out=PATHS))
def test_dse_run_fuzz(tmp_path, opts):
    if "--n-trials" not in opts:
        opts += ["--n-trials", "1"]
    if "--storage" not in opts:
        opts += ["--storage", "memory"]
    _invoke(tmp_path, ["dse", "run", "star-tiling", "--no-progress", "--workers", "1", *opts])


BAD_JOB = st.sampled_from([["--tokens", "-1"], ["--tokens", "0"], ["--tokens", str(2**40)], ["--text", "nosuch"],
                           ["--text", "{tmp}/missing/t.txt"], ["--out", "{tmp}/file/sub"], ["--methods", "nosuch"],
                           ["--model", "{tmp}/file"], ["--model", "{tmp}/missing.gguf"]])


@pytest.mark.parametrize("command", ["run", "sweep", "eval"])
@settings(max_examples=6, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(bad=BAD_JOB)
def test_model_commands_refuse_bad_options_before_work(tmp_path, command, bad):
    """At least one hostile option each, so every draw must fail up front (a success would mean a silently
    accepted value, and a long run)."""
    args = [command, *bad] if command != "eval" or bad[0] != "--out" else [command, "--json", bad[1]]
    if command == "sweep" and bad[0] in ("--text", "--model"):
        args = [command, "--texts", bad[1]]
    if command == "eval" and bad[0] == "--text":
        args = [command, "--text", bad[1]]
    result, args = _invoke(tmp_path, args)
    assert result.exit_code == 2, (args, result.output)


@SETTINGS
@given(paper=st.sampled_from(["nosuch", "", "SOFA"]), out=PATHS)
def test_reproduce_refuses_bad_options_before_work(tmp_path, paper, out):
    result, args = _invoke(tmp_path, ["reproduce", "--paper", paper, "--out", out])
    assert result.exit_code == 2, (args, result.output)


@SETTINGS
@given(space=st.sampled_from(["star-tiling", "nosuch", "{tmp}/file"]),
       seq=st.sampled_from(["-5", "5", "16", "4096", str(2**40)]))
def test_dse_check_fuzz(tmp_path, space, seq):
    _invoke(tmp_path, ["dse", "check", space, "--seq", seq])
