"""`miner doctor` through the real CLI: what a new user sees for a healthy setup and for each thing
that is missing. Databases and brokers are real (a SQLite file) or really absent (a loopback port
nothing listens on); nothing is mocked.
"""

from __future__ import annotations

import json
import os
import re
import socket
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from miner.cli import app

PASSWORD = "hunter2-not-for-logs"
TOKEN = "ghp_doctorTestToken0123456789abcdefABCD"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Only what each test sets: no MINER_* variable or ./config.yaml of the machine leaks in."""
    for name in list(os.environ):
        if name.startswith("MINER_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def free_port() -> int:
    """A loopback port that nothing listens on (bound, read, released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def healthy_config(tmp_path: Path, **extra: str) -> Path:
    config = tmp_path / "miner-config.yaml"
    lines = [f"database_url: sqlite:///{tmp_path / 'miner.db'}", f"work_dir: {tmp_path}", "broker_url: null"]
    lines += [f"{key}: {value}" for key, value in extra.items()]
    config.write_text("\n".join(lines) + "\n")
    return config


def doctor(env: dict[str, str], fmt: str = "json") -> Result:
    return CliRunner().invoke(app, ["doctor", "--format", fmt], env=env)


def rows_of(outcome: Result) -> dict[str, tuple[str, str]]:
    rows = json.loads(outcome.stdout)
    assert [sorted(row) for row in rows] == [["check", "detail", "verdict"]] * len(rows)
    return {row["check"]: (row["verdict"], row["detail"]) for row in rows}


CHECKS = ["settings", "git", "database", "broker", "github token", "work dir", "crawls"]


def test_healthy_sqlite_setup_passes_with_json_rows(tmp_path: Path) -> None:
    config = healthy_config(tmp_path)
    outcome = doctor({"MINER_CONFIG": str(config)})
    assert outcome.exit_code == 0, outcome.output
    checks = rows_of(outcome)
    assert list(checks) == CHECKS
    assert {name: verdict for name, (verdict, _) in checks.items()} == {
        "settings": "ok",
        "git": "ok",
        "database": "ok",
        "broker": "ok",
        "github token": "warn",  # a warning, not a failure: crawls still work
        "work dir": "ok",
        "crawls": "ok",
    }
    assert checks["settings"][1] == f"read {config}, then MINER_* environment variables"
    assert re.fullmatch(r"git version \d+\.\d+.*", checks["git"][1])
    assert checks["database"][1] == f"sqlite:///{tmp_path / 'miner.db'} (schema up to date)"
    assert (tmp_path / "miner.db").is_file()  # the first session migrated it
    assert checks["broker"][1] == "none configured: `miner crawl` mines in this process"
    assert "set MINER_GITHUB__TOKEN" in checks["github token"][1]
    assert re.fullmatch(rf"{re.escape(str(tmp_path))}: \d+\.\d GB free", checks["work dir"][1])


def test_a_configured_token_is_reported_but_never_printed(tmp_path: Path) -> None:
    outcome = doctor({"MINER_CONFIG": str(healthy_config(tmp_path)), "MINER_GITHUB__TOKEN": TOKEN})
    assert outcome.exit_code == 0, outcome.output
    assert rows_of(outcome)["github token"][0] == "ok"
    assert TOKEN not in outcome.output


def test_without_a_config_file_the_defaults_are_named_and_it_is_a_warning(tmp_path: Path) -> None:
    env = {
        "MINER_CONFIG": str(tmp_path / "absent.yaml"),
        "MINER_DATABASE_URL": f"sqlite:///{tmp_path / 'env.db'}",
        "MINER_WORK_DIR": str(tmp_path),
    }
    outcome = doctor(env)
    assert outcome.exit_code == 0, outcome.output
    verdict, detail = rows_of(outcome)["settings"]
    assert (verdict, detail) == (
        "warn",
        f"no {tmp_path / 'absent.yaml'} here: using defaults and MINER_* environment variables",
    )


def test_unreachable_postgresql_fails_in_plain_words_without_the_password(tmp_path: Path) -> None:
    port = free_port()
    env = {
        "MINER_CONFIG": str(healthy_config(tmp_path)),
        "MINER_DATABASE_URL": f"postgresql://miner:{PASSWORD}@127.0.0.1:{port}/miner",
    }
    outcome = doctor(env)
    assert outcome.exit_code == 1
    checks = rows_of(outcome)
    assert list(checks) == CHECKS  # one failure does not stop the other checks
    verdict, detail = checks["database"]
    assert verdict == "fail"
    assert detail.startswith(f"database postgresql+psycopg://miner:***@127.0.0.1:{port}/miner is unavailable: ")
    assert "Connection refused" in detail
    assert detail.endswith("Start the server or fix MINER_DATABASE_URL.")
    assert "\n" not in detail and "Traceback" not in outcome.output
    assert PASSWORD not in outcome.output
    assert {name: verdict for name, (verdict, _) in checks.items() if name != "database"} == {
        "settings": "ok",
        "git": "ok",
        "broker": "ok",
        "github token": "warn",
        "work dir": "ok",
        "crawls": "warn",
    }
    assert checks["crawls"][1] == "not checked: the database is unavailable"


def test_sqlite_file_in_a_missing_folder_fails_in_plain_words(tmp_path: Path) -> None:
    database = tmp_path / "no" / "such" / "folder" / "miner.db"
    env = {"MINER_CONFIG": str(healthy_config(tmp_path)), "MINER_DATABASE_URL": f"sqlite:///{database}"}
    outcome = doctor(env)
    assert outcome.exit_code == 1
    verdict, detail = rows_of(outcome)["database"]
    assert (verdict, detail) == (
        "fail",
        f"database sqlite:///{database} is unavailable: unable to open database file. "
        "Start the server or fix MINER_DATABASE_URL.",
    )


def test_unreachable_broker_fails_in_plain_words_without_the_password(tmp_path: Path) -> None:
    port = free_port()
    env = {
        "MINER_CONFIG": str(healthy_config(tmp_path)),
        "MINER_BROKER_URL": f"redis://:{PASSWORD}@127.0.0.1:{port}/0",
    }
    outcome = doctor(env)
    assert outcome.exit_code == 1
    checks = rows_of(outcome)
    assert checks["broker"] == (
        "fail",
        f"cannot reach the broker at redis://:**@127.0.0.1:{port}/0 (Error 111 connecting to 127.0.0.1:{port}. "
        "Connection refused.); start Redis or unset MINER_BROKER_URL",
    )
    assert checks["database"][0] == "ok"
    assert PASSWORD not in outcome.output


def test_missing_git_fails_and_says_how_to_install_it(tmp_path: Path) -> None:
    empty_bin = tmp_path / "empty-bin"
    empty_bin.mkdir()
    env = {"MINER_CONFIG": str(healthy_config(tmp_path)), "PATH": str(empty_bin)}
    outcome = doctor(env)
    assert outcome.exit_code == 1
    assert rows_of(outcome)["git"] == ("fail", "git is not installed: install it (e.g. apt-get install git)")


def test_table_output_for_people_still_exits_1_on_a_failure(tmp_path: Path) -> None:
    env = {"MINER_CONFIG": str(healthy_config(tmp_path)), "MINER_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0"}
    outcome = doctor(env, fmt="table")
    assert outcome.exit_code == 1
    text = re.sub(r"\s+", " ", outcome.stdout)
    for words in ("doctor", "broker", "fail", "cannot reach the broker", "database", "ok"):
        assert words in text


def test_invalid_settings_are_one_line_on_stderr_and_exit_1(tmp_path: Path) -> None:
    config = tmp_path / "broken.yaml"
    config.write_text("workers: many\n")
    outcome = doctor({"MINER_CONFIG": str(config)})
    assert outcome.exit_code == 1
    assert outcome.stdout == ""
    assert outcome.stderr.startswith("error: invalid settings:")
    assert "workers" in outcome.stderr and "Traceback" not in outcome.output


@pytest.mark.parametrize(
    "args",
    [
        ["stats"],
        ["findings"],
        ["repos"],
        ["crawls"],
        ["export", "--out", "out"],
        ["report", "--out", "out"],
        ["serve", "--port", "1"],
        ["crawl", "--topic", "t"],
        ["mine", "."],
        ["db", "upgrade"],
    ],
)
def test_every_command_on_an_unreachable_database_fails_in_one_line(tmp_path: Path, args: list[str]) -> None:
    """No traceback, no password, exit code 1, and nothing written (serve never starts)."""
    port = free_port()
    env = {
        "MINER_CONFIG": str(tmp_path / "absent.yaml"),
        "MINER_DATABASE_URL": f"postgresql://miner:{PASSWORD}@127.0.0.1:{port}/miner",
        "MINER_GITHUB__API_URL": f"http://127.0.0.1:{free_port()}",
    }
    outcome = CliRunner().invoke(app, args, env=env)
    assert outcome.exit_code == 1, outcome.output
    assert outcome.exception is None or isinstance(outcome.exception, SystemExit), outcome.exception
    message = re.sub(r"\s+", " ", outcome.stderr).strip()
    assert message.startswith("error: ") and "Traceback" not in outcome.output, outcome.output
    assert f"127.0.0.1:{port}" in message and "Connection refused" in message, message
    assert PASSWORD not in outcome.output and not (tmp_path / "out").exists()
