"""The main job: quick mode end to end (real models), resume, bad input before any work, and the report's HTML --
its structure without a browser, and in headless Chromium when installed (every figure loads, tables present)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser

import pytest
from typer.testing import CliRunner

from sparseattn.cli import app

METHODS = "topk,sofa,pade,sanger"
runner = CliRunner()


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory, smollm):
    out = tmp_path_factory.mktemp("job") / "run"
    args = ["run", "--quick", "--methods", METHODS, "--out", str(out)]
    result = runner.invoke(app, args, terminal_width=120)
    assert result.exit_code == 0, result.output
    return out, result.output


@pytest.mark.slow  # the whole quick main job (a module fixture): minutes on 2 cores
def test_quick_job_writes_everything(quick_run):
    out, output = quick_run
    data = json.loads((out / "results.json").read_text())
    steps = data["steps"]
    assert set(steps["accuracy"]) == {"dense", *METHODS.split(",")}
    for m in METHODS.split(","):
        row = steps["accuracy"][m]
        assert 0 < row["density"] < 1 and row["ppl"] > 0 and "oracle" in row and row["fidelity"]
        assert (out / row["trace"]).is_file()
    assert set(steps["encoder"]) == {"dense", *METHODS.split(",")}
    hw = steps["hardware"]
    assert {"a100@decoder", "h100@decoder", "sofa@decoder", "pade@decoder", "sanger@decoder", "pade@encoder"} <= set(hw)
    assert hw["pade@decoder"]["shape"] == "llama2-7b" and hw["pade@decoder"]["latency_ms"] > 0
    assert steps["kernels"]["rows"]["run"] is False  # no CUDA here, and the report says why
    cal = steps["calibration"]  # equal accuracy: every method with a knob, at quick mode's one budget
    assert set(cal) == set(METHODS.split(",")) and all(len(rows) == 1 for rows in cal.values())
    for rows in cal.values():
        (r,) = rows
        assert r["calib_text"] == "sotu" and r["judge_text"] == "moby-dick" and r["budget"] == 0.02
        assert r["reached"] is (r["calib_loss"] <= 0.02)
    assert {"sofa@0.02", "pade@0.02", "sanger@0.02"} <= set(steps["calibration_hw"])
    assert (out / "figures" / "density_vs_budget.png").is_file()
    assert data["environment"]["torch"] and data["config"]["quick"] is True
    for name in ("accuracy.csv", "encoder.csv", "hardware.csv"):
        assert (out / "tables" / name).read_text().count("\n") >= 3
    assert "report:" in output and "sofa" in output
    # progress (not a terminal here: one line per unit): the step of how many, the unit within it, the time left
    progress = [line for line in output.splitlines() if line.startswith("step ")]
    assert any(line.startswith("step 1 of ") and "(accuracy), method 2 of 5: topk" in line for line in progress)
    assert any("(encoder)" in line for line in progress) and any("left]" in line for line in progress)
    assert progress[-1].split(":")[0].endswith("(report)")
    # the summary table fits 80 columns with the names whole (CliRunner's width is 120; the table is drawn narrow)
    table = output[output.index("every method in every layer"):output.index("report:")]
    assert max(len(line) for line in table.splitlines()) <= 80 and "…" not in table


class _Doc(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


@pytest.mark.slow  # the whole quick main job (a module fixture): minutes on 2 cores
def test_report_html_structure(quick_run):
    out, _ = quick_run
    text = (out / "report.html").read_text()
    doc = _Doc()
    doc.feed(text)
    images = [a for t, a in doc.tags if t == "img"]
    assert len(images) >= 4 and all(a["src"].startswith("data:image/png;base64,") for a in images)
    assert all(a.get("alt") for a in images)
    assert sum(t == "table" for t, _ in doc.tags) >= 3  # accuracy, encoder, hardware (quick: no reproduce)
    assert "How to read this" in text and "Assumptions behind the hardware numbers" in text
    for tag in ("measured", "simulated"):
        assert f'class="tag {tag}"' in text
    assert "http://" not in text and "https://" not in text and "<script" not in text  # opens offline, no scripts
    # the summary comes first and answers from the results; plain words, no configuration keys or history
    assert text.index('id="summary"') < text.index('id="how-to-read-this"')
    summary = text[text.index('id="summary"'):text.index('id="how-to-read-this"')]
    assert "Which method." in summary and "<b>SOFA</b>" in summary and "<b>PADE</b>" in summary
    assert "this quick run does not recompute them" in summary
    prose = text[:text.index('id="configuration"')]  # the appendix dumps the configuration's keys, as it should
    assert "reproduce: false" not in prose and "dse_trials" not in prose
    assert not re.search(r"\bissue \d+|before issue", prose, flags=re.I)
    assert "whole H100 running FlashAttention" in text  # the two GPU comparisons reconciled where they appear
    # every number column is tagged measured / simulated / paper
    for head in re.findall(r"<th>(.*?)</th>", text):
        plain = re.sub(r"<[^>]+>", "", head)
        if any(w in plain for w in ("density", "perplexity", "vs dense", "speed-up", "energy", "cosine", "mass",
                                    "error", "latency", "utilisation", "GOPS", "ours")):
            assert 'class="tag' in head, plain


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed (Debian: apt-get install chromium; "
                    "`make test` installs it where it can)")
@pytest.mark.slow  # the whole quick main job (a module fixture): minutes on 2 cores
def test_report_renders_in_a_real_browser(quick_run, tmp_path):
    out, _ = quick_run
    probe = tmp_path / "probe.html"
    check = ("<script>window.onload=()=>{const i=[...document.images];document.body.setAttribute('data-images',"
             "i.length);document.body.setAttribute('data-broken',i.filter(x=>!(x.complete&&x.naturalWidth>0)).length);"
             "document.body.setAttribute('data-tables',document.querySelectorAll('table').length)}</script>")
    probe.write_text((out / "report.html").read_text().replace("</body>", check + "</body>"))
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000", "--dump-dom",
           probe.as_uri()]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
    found = dict(re.findall(r'data-(images|broken|tables)="(\d+)"', dom))
    assert int(found["images"]) >= 4 and found["broken"] == "0" and int(found["tables"]) >= 3, found


@pytest.mark.slow  # the whole quick main job (a module fixture): minutes on 2 cores
def test_resume_reuses_finished_units_and_recomputes_the_rest(quick_run, tmp_path):
    out, _ = quick_run
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    data = json.loads((copy / "results.json").read_text())
    kept = data["steps"]["accuracy"]["topk"]
    del data["steps"]["accuracy"]["sanger"]  # as if interrupted before sanger finished
    del data["steps"]["hardware"]["sanger@decoder"]
    (copy / "results.json").write_text(json.dumps(data))
    result = runner.invoke(app, ["run", "--quick", "--methods", METHODS, "--out", str(copy), "--resume"],
                           terminal_width=120)
    assert result.exit_code == 0, result.output
    after = json.loads((copy / "results.json").read_text())["steps"]
    assert after["accuracy"]["topk"] == kept  # reused, not recomputed
    assert "sanger" in after["accuracy"] and "sanger@decoder" in after["hardware"]
    refused = runner.invoke(app, ["run", "--quick", "--methods", "topk", "--out", str(copy), "--resume"],
                            terminal_width=120)
    assert refused.exit_code == 2 and "other options" in refused.output


def test_bad_input_is_refused_before_any_work(tmp_path):
    bad_yaml = tmp_path / "run.yaml"
    bad_yaml.write_text("tokens: 256\nmethod: topk\n")
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("Café, naïve façade. ".encode("latin-1") * 200)
    short = tmp_path / "short.txt"
    short.write_text("A few words only.")
    for args, needle in [
        (["run", "--config", str(bad_yaml)], "method: Extra inputs are not permitted"),
        (["run", "--text", str(latin1), "--out", str(tmp_path / "a")], "not UTF-8"),
        (["run", "--text", str(short), "--out", str(tmp_path / "b")], "the text has only"),
        (["run", "--model", "gpt-5", "--out", str(tmp_path / "c")], "unknown model 'gpt-5'"),
        (["run", "--methods", "topk,nope", "--out", str(tmp_path / "d")], "unknown method 'nope'"),
        (["run", "--archs", "sofa", "--out", str(tmp_path / "e")], "is not a GPU architecture"),
        (["run", "--out", str(tmp_path / "missing" / "deeper")], "does not exist"),
    ]:
        result = runner.invoke(app, args, terminal_width=200)
        assert result.exit_code == 2, (args, result.output)
        assert needle in " ".join(result.output.split()), (args, result.output)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latin1.txt", "run.yaml", "short.txt"]  # nothing written
