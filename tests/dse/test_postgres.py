"""PostgreSQL: a study against a real PostgreSQL server, started by the test from Debian's package.

Needs the server binaries (``initdb`` and ``pg_ctl`` under ``/usr/lib/postgresql/<version>/bin``: Debian's
``postgresql`` package, ``apt-get install postgresql``) and ``psycopg2`` (``pip install psycopg2-binary``, in the
``dse`` and ``dev`` extras). As root the server runs as the ``postgres`` user the package creates (through
``runuser``), since PostgreSQL refuses to run as root. The server listens only on a Unix socket in a temporary
directory and is stopped afterwards. Skipped, with the reason, when any of this is missing.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from sparseattn.dse import StudyConfig, run_study

HOW = "install Debian's `postgresql` package (apt-get install postgresql) to run it"


def _bin_dir() -> Path | None:
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: [int(x) for x in Path(d).parent.name.split(".")
                                                                         if x.isdigit()])
    found = [Path(d) for d in dirs if (Path(d) / "initdb").exists() and (Path(d) / "pg_ctl").exists()]
    return found[-1] if found else None


def _runner() -> list[str]:
    """How to run the server's commands: directly, or as ``postgres`` when we are root."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip(f"running as root and there is no `postgres` user to run the server as; {HOW}")
    if not shutil.which("runuser"):
        pytest.skip("running as root without `runuser` to start the server as `postgres`")
    return ["runuser", "-u", "postgres", "--"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url():
    pytest.importorskip("psycopg2", reason="psycopg2 is not installed: pip install psycopg2-binary")
    bin_dir = _bin_dir()
    if bin_dir is None:
        pytest.skip(f"PostgreSQL server binaries (initdb, pg_ctl under /usr/lib/postgresql/*/bin) not found; {HOW}")
    run_as = _runner()
    root = Path(tempfile.mkdtemp(prefix="sparseattn-pg-"))
    if run_as:
        shutil.chown(root, "postgres", "postgres")
    data, port = root / "data", _free_port()
    subprocess.run([*run_as, str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
                    "--no-sync"], check=True, capture_output=True)
    opts = f"-k {root} -p {port} -c listen_addresses='' -c fsync=off"
    subprocess.run([*run_as, str(bin_dir / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(root / "log"),
                    "-w", "start"], check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg2://postgres@/postgres?host={root}&port={port}"
    finally:
        subprocess.run([*run_as, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def test_study_in_postgresql_runs_and_resumes(small_space, postgres_url):
    cfg = StudyConfig(sampler="random", n_trials=6, seed=1, storage=postgres_url, study_name="pg", workers=1,
                      progress=False)
    first = run_study(small_space, cfg)
    assert len(first.records) == 6
    assert first.evaluated == sum(r.duplicate_of is None for r in first.records)  # a repeated point is not rerun
    cfg.n_trials = 10  # a second driver (here the same process) continues the stored study
    second = run_study(small_space, cfg)
    study = optuna.load_study(study_name="pg", storage=postgres_url)
    done = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(done) == 10
    assert [t.user_attrs["dse"]["point"] for t in done[:6]] == [r.point for r in first.records]
    assert second.evaluated == sum(r.duplicate_of is None for r in second.records[6:])
    assert study.user_attrs["space"]["name"] == "small-test"
