"""docker/: no Docker engine runs here, so the compose file is checked against this package.

Every service built from our image runs a command that exists: `celery -A workers <sub>` loads
the real app and its options parse (`--help` through Celery's own command line), `miner <cmd>`
is a registered Typer command whose options parse. Every MINER_* variable is a real setting,
the URLs point at the compose services, and the image installs what those commands need.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from miner.cli import app as miner_app
from miner.core.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
DOCKER = ROOT / "docker"
COMPOSE = yaml.safe_load((DOCKER / "compose.yaml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
OURS = sorted(name for name, service in SERVICES.items() if "build" in service)
DOCKERFILE = (DOCKER / "Dockerfile").read_text()
_VARIABLE = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?::?[-?](?P<default>[^}]*))?\}")
MINER_COMMANDS = {command.name for command in typer.main.get_group(miner_app).commands.values()}


def _interpolate(value: str, given: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error}, with `given` as the shell environment."""

    def substitute(match: re.Match[str]) -> str:
        name = match.group("name")
        if name in given:
            return given[name]
        if "?" in match.group(0):
            raise AssertionError(f"{name} is required by the compose file")
        return match.group("default") or ""

    return _VARIABLE.sub(substitute, value)


def _environment(service: dict[str, Any], given: dict[str, str]) -> dict[str, str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    return {key: _interpolate(str(value), given) for key, value in environment.items()}


SHELL = {"MINER_POSTGRES_PASSWORD": "s3cret"}


def test_the_compose_file_has_every_service_of_the_design() -> None:
    assert set(SERVICES) == {"redis", "postgres", "worker", "beat", "flower", "api"}
    assert OURS == ["api", "beat", "flower", "worker"]
    for name in OURS:
        build = SERVICES[name]["build"]
        context = (DOCKER / build["context"]).resolve()
        assert context == ROOT and (context / build["dockerfile"]).is_file()
        assert set(SERVICES[name]["depends_on"]) == {"redis", "postgres"}


def test_the_broker_keeps_queued_tasks_across_a_restart() -> None:
    """The same persistence the restart test gives its private Redis (test_service_restarts.py)."""
    command = SERVICES["redis"]["command"]
    options = dict(zip(command[1::2], command[2::2]))
    assert command[0] == "redis-server" and options == {"--appendonly": "yes", "--appendfsync": "always"}
    assert any(volume.endswith(":/data") for volume in SERVICES["redis"]["volumes"])


@pytest.mark.parametrize("name", [n for n in OURS if SERVICES[n]["command"][0] == "celery"])
def test_celery_services_run_the_workers_app_with_options_celery_accepts(name: str) -> None:
    command = SERVICES[name]["command"]
    assert command[:3] == ["celery", "-A", "workers"], command
    subcommand = command[3]
    assert subcommand in {"worker", "beat", "flower"}
    if subcommand == "flower":
        # flower is installed in the image only; its command comes from that package
        assert re.search(r'pip install [^\n]*"flower', DOCKERFILE)
        probe = [*command[:3], "inspect", "--help"]  # still: the app loads under Celery's CLI
    else:
        probe = [*command, "--help"]
    env = {
        "PATH": _path(),
        "PYTHONPATH": str(ROOT),
        "HOME": str(ROOT),
        **_environment(SERVICES[name], SHELL),
        "MINER_CONFIG": "/nonexistent.yaml",
    }
    done = subprocess.run([sys.executable, "-m", *probe], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Usage:" in done.stdout


def _path() -> str:
    import os

    return os.environ.get("PATH", "/usr/bin:/bin")


def test_the_workers_module_is_the_celery_app_with_both_tasks() -> None:
    import celery

    import workers
    import workers.tasks  # noqa: F401 - registers the tasks

    assert isinstance(workers.app, celery.Celery)
    assert {"workers.tasks.mine_repo", "workers.tasks.crawl_topics"} <= set(workers.app.tasks)
    assert workers.app.conf.beat_schedule["nightly-crawl"]["task"] == "workers.tasks.crawl_topics"


@pytest.mark.parametrize("name", [n for n in OURS if SERVICES[n]["command"][0] == "miner"])
def test_miner_services_run_a_registered_command_with_options_it_accepts(name: str) -> None:
    command = SERVICES[name]["command"]
    assert command[1] in MINER_COMMANDS, f"`miner {command[1]}` is not a command of miner.cli"
    result = CliRunner().invoke(miner_app, [*command[1:], "--help"])
    assert result.exit_code == 0, result.output


def test_every_miner_variable_is_a_setting_and_points_at_the_compose_services(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in OURS:
        environment = _environment(SERVICES[name], SHELL)
        assert {"MINER_DATABASE_URL", "MINER_BROKER_URL"} <= set(environment)
        for key in list(environment):
            _assert_is_setting(key)
        for key in [k for k in __import__("os").environ if k.startswith("MINER_")]:
            monkeypatch.delenv(key)
        for key, value in environment.items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("MINER_CONFIG", "/nonexistent.yaml")
        settings = Settings()
        database = make_url(settings.database_url)
        assert (database.drivername, database.host, database.port) == ("postgresql+psycopg", "postgres", 5432)
        postgres = _environment(SERVICES["postgres"], SHELL)
        assert (database.username, database.password, database.database) == (
            postgres["POSTGRES_USER"],
            postgres["POSTGRES_PASSWORD"],
            postgres["POSTGRES_DB"],
        )
        assert settings.broker_url == "redis://redis:6379/0"
        assert settings.work_dir == "/work"
        assert settings.github.token is None, "an empty token variable means no token"
    with pytest.raises(AssertionError, match="MINER_POSTGRES_PASSWORD is required"):
        _environment(SERVICES["worker"], {})


def _assert_is_setting(variable: str) -> None:
    path = variable.removeprefix("MINER_").lower().split("__")
    model: Any = Settings
    for part in path:
        assert part in model.model_fields, f"{variable}: {part!r} is not a setting"
        model = model.model_fields[part].annotation


def test_the_image_installs_the_package_with_git_on_python_311() -> None:
    assert re.search(r"^FROM python:3\.11-slim\b", DOCKERFILE, re.MULTILINE)
    assert re.search(r"apt-get install[^\n]*\bgit\b", DOCKERFILE)
    assert re.search(r"^RUN pip install \.", DOCKERFILE, re.MULTILINE)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    copied = " ".join(line for line in DOCKERFILE.splitlines() if line.startswith("COPY"))
    packages = {pattern.rstrip("*") for pattern in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    for needed in [*packages, "pyproject.toml", project["project"]["readme"], "config.yaml"]:
        assert re.search(rf"\b{re.escape(needed)}\b", copied), f"the image does not copy {needed}"
        assert (ROOT / needed).exists()
    assert "miner" in project["project"]["scripts"]
    ignored = (DOCKER / "Dockerfile.dockerignore").read_text().split()
    assert not set(ignored) & {*packages, "pyproject.toml", "README.md", "config.yaml"}


def test_the_click_commands_are_real() -> None:
    """The probe the celery tests rely on: a wrong subcommand or option does not parse."""
    done = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "workers", "worker", "--no-such-option", "--help"],
        env={"PATH": _path(), "PYTHONPATH": str(ROOT), "MINER_CONFIG": "/nonexistent.yaml"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert {"crawl", "crawls", "mine", "stats"} <= MINER_COMMANDS
    assert CliRunner().invoke(miner_app, ["no-such-command", "--help"]).exit_code != 0
