"""The README's Python examples run as written (on the real model)."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.slow  # runs every README example on the real model
def test_readme_python_examples_run(smollm):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 2
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)
    assert namespace["r"].density < 1 and namespace["trace"].shape.layers == 2


def test_readme_quick_start_is_the_two_make_commands():
    text = README.read_text()
    quick = text[text.index("## Quick start") :].split("```bash\n", 1)[1].split("```", 1)[0]
    assert [line.split("#")[0].strip() for line in quick.strip().splitlines()] == ["make run", "make test"]
    ci = (README.parent / ".ci" / "run").read_text()
    assert "make test" in ci
