"""``dse run`` options are honoured or refused: no option silently becomes a default, no storage problem and no
second driver on a fresh storage ends in a traceback; each error is one line naming the argument (exit code 2)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from sparseattn.cli import app

from .conftest import SMALL, write_space

runner = CliRunner()


def _run(tmp_path, *args: str):
    space = write_space(tmp_path, SMALL)
    return runner.invoke(app, ["dse", "run", str(space), "--workers", "1", "--no-progress", "--out",
                               str(tmp_path / "out"), *args], terminal_width=200)


@pytest.mark.parametrize(("args", "expect"), [
    (["--n-trials", "0"], "--n-trials 0"),
    (["--n-trials", "-3"], "--n-trials -3"),
    (["--workers", "0"], "--workers 0"),
    (["--batch", "0"], "--batch 0"),
    (["--seq", "5"], "--seq 5"),
    (["--storage", "foo://x"], "--storage 'foo://x'"),
    (["--storage", "postgresql://nobody@127.0.0.1:1/db"], "--storage"),
    (["--storage", "sqlite:///{tmp}/nodir/x.db"], "does not exist"),
    (["--n-trials", "2", "--out", "{tmp}/file/sub"], "is a file"),
])
def test_bad_dse_options_are_refused_in_one_line(tmp_path, args, expect):
    (tmp_path / "file").write_text("x")
    result = _run(tmp_path, *[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert result.exit_code == 2, result.output
    out = " ".join(result.output.split())
    assert expect in out, out
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) <= 3


def _open(url: str, barrier, errors) -> None:
    from sparseattn.dse.study import StudyConfig, open_study

    from .conftest import space_of

    space = space_of(SMALL)
    barrier.wait()  # every driver opens the fresh storage at once
    try:
        open_study(space, StudyConfig(), url, "both")
    except Exception as err:
        errors.put(f"{type(err).__name__}: {err}"[:300])


def test_drivers_started_at_once_on_a_fresh_storage_share_the_study(tmp_path):
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    errors = ctx.Queue()
    for round_ in range(3):
        url = f"sqlite:///{tmp_path / f'fresh{round_}.db'}"
        barrier = ctx.Barrier(4)
        procs = [ctx.Process(target=_open, args=(url, barrier, errors)) for _ in range(4)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(timeout=120)
    found = []
    while not errors.empty():
        found.append(errors.get())
    assert not found, found
