"""`make run` and the Makefile's venv, as a new user meets them.

`make run` is run for real, in the venv these tests run in (VENV=sys.prefix): against the fake
GitHub serving real repositories built in tmp_path it crawls and prints the stats; against an
address where nothing listens it ends with one line saying GitHub could not be reached. Its
install step is taken as done (`make -o`), so no test reinstalls the package; what that step
does, and that a second run skips it, is read from `make -n` (what make would run) on a venv
folder of the test's own.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from crawl_fixtures import build_corpus, crawl_env, expected_stats, kinds_of, register, stats_digest, stats_document
from github_fake import FakeGithub

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(sys.prefix)

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="GNU make is not installed")


def _make(*args: str, env: dict[str, str] | None = None, timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
    """A top-level make, even under `make test`: no flags or level inherited from the outer one."""
    inherited = {key: value for key, value in os.environ.items() if key not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(ROOT), *args],
        env={**inherited, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )


def _make_run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`make run` in this venv, its install taken as done."""
    return _make("-o", f"{VENV}/.installed-run", "run", f"VENV={VENV}", env=env)


def test_make_run_crawls_a_github_compatible_server_and_prints_the_stats(tmp_path: Path) -> None:
    corpus = build_corpus(tmp_path / "repos", 4)
    database_url = f"sqlite:///{tmp_path / 'miner.db'}"
    with FakeGithub() as fake:
        register(fake, corpus)
        env = crawl_env(fake.url, database_url, tmp_path / "work", MINER_WORKERS="1")
        done = _make_run(env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "crawl 1: 4 repositories found, 4 to mine, 0 unchanged" in done.stderr
    # the crawl's row, then the stats' sections (table format)
    for title in ("crawls", "headline", "apis", "categories", "failures"):
        assert title in done.stdout, done.stdout
    assert stats_digest(stats_document(database_url)) == expected_stats(kinds_of(corpus))
    assert "Traceback" not in done.stdout + done.stderr


def test_make_run_offline_ends_with_one_line_saying_github_could_not_be_reached(tmp_path: Path) -> None:
    env = crawl_env(
        "http://127.0.0.1:9",
        f"sqlite:///{tmp_path / 'miner.db'}",
        tmp_path / "work",
        MINER_GITHUB__MAX_RETRIES="1",
        MINER_GITHUB__BACKOFF_BASE_S="0.01",
    )
    done = _make_run(env)
    assert done.returncode != 0
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    # make's own report of the failed step ("make: *** [Makefile:N: run] Error 1") is make's;
    # everything else is the one line miner prints
    ours = [line for line in lines if not re.match(r"make(\[\d+\])?: \*\*\* ", line)]
    assert len(ours) == 1, done.stderr
    assert ours[0].startswith("error: crawl failed:") and "GitHub unavailable" in ours[0], ours[0]
    assert "Traceback" not in done.stderr


def _venv_folder(tmp_path: Path) -> Path:
    """A venv folder make takes as made: its bin/python exists."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    return venv


def _planned(*args: str) -> list[str]:
    done = _make("-n", *args)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_a_second_make_run_installs_nothing(tmp_path: Path) -> None:
    venv = _venv_folder(tmp_path)
    first = _planned("run", f"VENV={venv}")
    assert any(f"{venv}/bin/python -m pip" in line and "install -e ." in line for line in first), first
    (venv / ".installed-run").touch()  # what the first run leaves, newer than pyproject.toml
    assert _planned("run", f"VENV={venv}") == [f"{venv}/bin/miner crawl", f"{venv}/bin/miner stats"]


def test_make_test_installs_the_test_extra_once_and_it_serves_make_run_too(tmp_path: Path) -> None:
    venv = _venv_folder(tmp_path)
    assert any("install -e '.[test]'" in line for line in _planned("test", f"VENV={venv}"))
    (venv / ".installed-test").touch()
    (venv / ".installed-run").touch()  # the test install's recipe touches both stamps
    assert _planned("test", f"VENV={venv}", "PYTEST_ARGS=-x tests/test_docs.py") == [
        f"VENV={venv} bash scripts/test.sh -x tests/test_docs.py"
    ]
    assert not any("pip" in line for line in _planned("run", f"VENV={venv}"))


def test_a_changed_pyproject_reinstalls(tmp_path: Path) -> None:
    venv = _venv_folder(tmp_path)
    stamp = venv / ".installed-run"
    stamp.touch()
    older = (ROOT / "pyproject.toml").stat().st_mtime - 60
    os.utime(stamp, (older, older))
    assert any("install -e ." in line for line in _planned("run", f"VENV={venv}"))


@pytest.mark.skipif(not Path("/usr/bin/python3").exists(), reason="no system python3 here")
def test_the_venv_is_made_from_the_system_python3_where_it_exists(tmp_path: Path) -> None:
    system_is_new_enough = (
        subprocess.run(["/usr/bin/python3", "-c", "import sys; sys.exit(sys.version_info < (3, 11))"]).returncode == 0
    )
    if not system_is_new_enough:
        pytest.skip("/usr/bin/python3 is older than 3.11, so the Makefile falls back to python3")
    venv = tmp_path / "fresh"
    # the Makefile's own choice, whatever PYTHON the environment running the tests carries
    environment = {
        key: value for key, value in os.environ.items() if key not in ("PYTHON", "MAKEFLAGS", "MFLAGS", "MAKELEVEL")
    }
    planned = subprocess.run(
        ["make", "--no-print-directory", "-C", str(ROOT), "-n", "run", f"VENV={venv}"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert f"/usr/bin/python3 -m venv {venv}" in planned.stdout, planned.stdout
