import json

import pytest
from typer.testing import CliRunner

from sparseattn.cli import app, parse_method_options

runner = CliRunner()


def test_methods_command_lists_every_method():
    result = runner.invoke(app, ["methods"], terminal_width=200)
    assert result.exit_code == 0
    for name in ("dense", "topk", "threshold", "block_topk", "--min-keys", "--delta"):
        assert name in result.output


def test_method_options_are_parsed_and_typed():
    assert parse_method_options(["--ratio", "0.2", "--block-size=64", "--keep-first", "false"]) == {
        "ratio": 0.2,
        "block_size": 64,
        "keep_first": False,
    }
    assert parse_method_options(["--Tc", "[2, 4]", "--keys", "cross_phase"]) == {"Tc": [2, 4], "keys": "cross_phase"}
    with pytest.raises(ValueError, match="as JSON"):
        parse_method_options(["--Tc", "[2, 4"])


def test_eval_runs_the_real_model(smollm, tmp_path):
    out = tmp_path / "r.json"
    result = runner.invoke(
        app,
        ["eval", "--method", "topk", "--ratio", "0.3", "--tokens", "128", "--text", "sotu", "--json", str(out)],
        terminal_width=200,
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text())
    assert [r["method"] for r in rows] == ["dense", "topk"] and rows[1]["params"] == {"ratio": 0.3}
    assert rows[1]["ppl"] > rows[0]["ppl"] and "topk" in result.output


def test_eval_reports_bad_input_clearly(smollm):
    for args, needle in [
        (["eval", "--method", "nope"], "unknown method"),
        (["eval", "--method", "topk", "--ratio", "3"], "less than or equal to 1"),
        (["eval", "--method", "topk", "--radius", "3"], "unknown parameter"),
        (["eval", "--method", "topk", "--ratio"], "needs a value"),
        (["eval", "--text", "hamlet", "--tokens", "64"], "unknown text"),
        (["eval", "--layers", "a,b"], "comma-separated integers"),
    ]:
        result = runner.invoke(app, args, terminal_width=200)
        assert result.exit_code == 2, (args, result.output)
        assert needle in result.output, (args, result.output)


def test_sweep_writes_results_table_and_plot(smollm, tmp_path):
    out = tmp_path / "run"
    args = ["sweep", "--out", str(out), "--texts", "sotu", "--tokens", "64", "--densities", "0.5", "--methods", "topk"]
    result = runner.invoke(app, args, terminal_width=200)
    assert result.exit_code == 0, result.output
    data = json.loads((out / "results.json").read_text())
    assert [r["method"] for r in data["rows"]] == ["dense", "topk"]
    assert (out / "perplexity_vs_density.png").stat().st_size > 10_000
    assert "| sotu | topk | 0.50 |" in (out / "results.md").read_text()
    bad = runner.invoke(app, ["sweep", "--densities", "1.5"], terminal_width=200)
    assert bad.exit_code == 2 and "(0, 1]" in bad.output


def test_simulate_command_prints_and_writes(tmp_path):
    j, c = tmp_path / "r.json", tmp_path / "r.csv"
    args = ["simulate", "--arch", "pade", "--shape", "llama2-7b", "--seq", "4096", "--json", str(j), "--csv", str(c)]
    result = runner.invoke(app, args, terminal_width=200)
    assert result.exit_code == 0, result.output
    data = json.loads(j.read_text())
    assert data["arch"] == "pade" and data["shape"]["q_len"] == 4096 and data["summary"]["latency_ms"] > 0
    assert data["mapping"]["formal"] == {"q": 16, "k": 64} and {e["kind"] for e in data["energy"]} >= {"dram"}
    assert "latency (ms)" in result.output and "11740" in result.output  # published GOPS/W beside ours
    assert "lane utilisation modelled" in result.output
    assert c.read_text().startswith("section,key,value")
    gpu = runner.invoke(app, ["simulate", "--arch", "h100", "--shape", "bert-base", "--seq", "512"])
    assert gpu.exit_code == 0, gpu.output


def test_simulate_takes_a_mapping_file_and_tile_overrides(tmp_path):
    import yaml

    mapping = tmp_path / "m.yaml"
    mapping.write_text(yaml.safe_dump({"formal": {"q": 64, "k": 64}, "stage_overlap": False}))
    j = tmp_path / "r.json"
    args = ["simulate", "--arch", "sofa", "--seq", "2048", "--mapping", str(mapping), "--k-tile", "32",
            "--json", str(j)]
    result = runner.invoke(app, args, terminal_width=200)
    assert result.exit_code == 0, result.output
    m = json.loads(j.read_text())["mapping"]
    assert m["formal"] == {"q": 64, "k": 32} and m["stage_overlap"] is False


def test_simulate_reports_bad_input_clearly(tmp_path):
    result = runner.invoke(app, ["simulate", "--arch", "tpu"], terminal_width=200)
    assert result.exit_code == 2 and "unknown architecture 'tpu'" in result.output
    too_big = ["simulate", "--arch", "sofa", "--q-tile", "512", "--k-tile", "512"]
    result = runner.invoke(app, too_big, terminal_width=200)
    assert result.exit_code == 2 and "over by" in result.output and "mapping.formal" in result.output
    zero = runner.invoke(app, ["simulate", "--arch", "sofa", "--q-tile", "24"], terminal_width=200)
    assert zero.exit_code == 2 and "formal.q" in zero.output and "multiple of the profile's base tile" in zero.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("formal: {q: 64, k: 64}\nreuse: true\n")
    result = runner.invoke(app, ["simulate", "--arch", "sofa", "--mapping", str(bad)], terminal_width=200)
    assert result.exit_code == 2 and "bad.yaml" in result.output and "reuse: Extra inputs" in result.output
    gpu_iso = runner.invoke(app, ["simulate", "--arch", "h100", "--iso"], terminal_width=200)
    assert gpu_iso.exit_code == 2 and "--iso do not apply to the GPU" in gpu_iso.output
    unknown = runner.invoke(app, ["simulate", "--arch", "pade", "--shape", "llama9"], terminal_width=200)
    assert unknown.exit_code == 2 and "unknown model shape 'llama9'" in unknown.output


def test_reproduce_command_writes_its_outputs(tmp_path):
    result = runner.invoke(app, ["reproduce", "--paper", "pade", "--out", str(tmp_path)], terminal_width=80)
    assert result.exit_code == 0, result.output
    assert "7.43" in result.output and (tmp_path / "reproduce.json").exists()
    table = [line for line in result.output.splitlines() if "pade_" in line]
    assert len(table) == 5 and all(len(line) <= 80 for line in table)  # compact: one row per claim, 80 columns
    assert "choice:" not in result.output  # the full markdown goes to reproduce.md, not the terminal
    bad = runner.invoke(app, ["reproduce", "--paper", "tpu"], terminal_width=200)
    assert bad.exit_code == 2 and "unknown paper" in bad.output


def test_run_default_output_directory_is_created_in_a_fresh_clone(tmp_path, monkeypatch):
    """`make run` passes no --out; runs/ is git-ignored, so a fresh clone lacks it (the job once refused)."""
    from sparseattn.cli.run_cmd import default_out
    from sparseattn.job.config import load_config
    from sparseattn.job.runner import check_before_work

    monkeypatch.chdir(tmp_path)
    assert not (tmp_path / "runs").exists()
    out = default_out(resume=False)
    assert out.parent == tmp_path.joinpath("runs").relative_to(tmp_path) and (tmp_path / "runs").is_dir()
    check_before_work(load_config(None, {"quick": True}).effective(), out)  # the job's own check accepts it
    assert default_out(resume=True).parent == out.parent  # nothing to resume yet: a new directory


def test_every_boolean_option_has_both_forms_and_takes_no_value():
    import typer

    def commands(cmd, name=""):
        yield name, cmd
        for sub, child in getattr(cmd, "commands", {}).items():
            yield from commands(child, f"{name} {sub}".strip())

    flags = [(name, p) for name, cmd in commands(typer.main.get_command(app)) for p in cmd.params
             if getattr(p, "is_flag", False) and p.name != "help"]
    assert {"iso_pade", "decode", "quick", "ray"} <= {p.name for _, p in flags}
    for name, p in flags:
        assert p.secondary_opts and p.secondary_opts[0].startswith("--no-"), (name, p.opts)
    out = runner.invoke(app, ["simulate", "--help"], terminal_width=120).output
    iso_line = next(line for line in out.splitlines() if "--iso" in line)
    assert "--no-iso" in iso_line and "<bool>" not in iso_line  # no value placeholder: it takes none
    on = runner.invoke(app, ["simulate", "--arch", "pade", "--shape", "llama2-7b", "--seq", "256", "--iso"])
    off = runner.invoke(app, ["simulate", "--arch", "pade", "--shape", "llama2-7b", "--seq", "256", "--no-iso"])
    assert on.exit_code == 0 and off.exit_code == 0, on.output + off.output
    assert on.output != off.output  # the flag changes what is simulated
