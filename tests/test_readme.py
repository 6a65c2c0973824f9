"""The README's Python examples run as written (on the real model), each block on its own in a fresh interpreter,
as a reader who copies one block would run it."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
# What each block must leave defined, so a block that silently does nothing cannot pass.
CHECK = {0: "assert r.density < 1 and r.out.shape == q.shape",
         1: "assert trace.shape.layers == 2",
         2: "assert len(decode) == 2 and prefill.shape.q_len > decode[0].shape.q_len",
         3: "assert res.summary()['latency_ms'] > 0"}


def test_readme_has_the_python_blocks_checked_here():
    assert len(BLOCKS) == len(CHECK)


@pytest.mark.slow  # a fresh interpreter per block, each importing torch and running the real model
@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_block_runs_alone_in_a_fresh_interpreter(index, tmp_path):
    script = tmp_path / f"block{index}.py"
    script.write_text(BLOCKS[index] + "\n" + CHECK[index] + "\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert done.returncode == 0, f"README python block {index + 1} fails alone:\n{done.stderr[-3000:]}"


def test_readme_quick_start_is_the_two_make_commands():
    text = README.read_text()
    quick = text[text.index("## Quick start") :].split("```bash\n", 1)[1].split("```", 1)[0]
    assert [line.split("#")[0].strip() for line in quick.strip().splitlines()] == ["make run", "make test"]
    ci = [line.strip() for line in (README.parent / ".ci" / "run").read_text().splitlines()]
    assert ci.index("make test") < ci.index("make run")
