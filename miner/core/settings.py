"""One Settings object: defaults, then config.yaml, then MINER_* environment variables."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)


class GithubSettings(BaseModel):
    """Where the GitHub REST API lives and how to authenticate; tokens never leave this object."""

    api_url: str = "https://api.github.com"
    web_url: str = "https://github.com"
    token: SecretStr | None = None
    tokens: list[SecretStr] = Field(default_factory=list)
    per_page: int = 100
    max_retries: int = 6
    backoff_base_s: float = 1.0
    backoff_max_s: float = 120.0
    timeout_s: float = 30.0
    min_request_interval_s: float = 0.25  # PyGithub's default pause between requests; 0 for none

    def all_tokens(self) -> list[str]:
        """Every configured token, the single one first, for rotation."""
        found = [self.token] if self.token else []
        found += self.tokens
        return [t.get_secret_value() for t in found if t.get_secret_value()]


class LimitSettings(BaseModel):
    """Bounds that keep one strange repository from stalling a crawl."""

    max_repo_size_kb: int = 1_000_000
    clone_timeout_s: int = 600
    max_clone_bytes: int = 1_000_000_000  # a clone folder growing past this is killed: too_large
    mine_timeout_s: int = 1800
    max_file_bytes: int = 5_000_000
    max_notebook_bytes: int = 20_000_000
    parse_timeout_s: float = 30.0
    parse_memory_mb: int = 2048  # address space the parser child may add; 0 for no cap


class ScheduleSettings(BaseModel):
    """The nightly crawl: a cron string in UTC and the topics it enumerates."""

    nightly_cron: str = "0 2 * * *"
    topics: list[str] = Field(default_factory=lambda: ["mlflow-projects"])
    query: str = ""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="MINER_",
        env_nested_delimiter="__",
        env_ignore_empty=True,
        extra="ignore",
    )

    database_url: str = "sqlite:///miner.db"
    # A session waits at most this long for a lock (a row another save holds; SQLite's write
    # lock), then fails and is retried; PostgreSQL ends a session idle inside a transaction this
    # long (a hung or vanished client), releasing its locks.
    database_lock_timeout_s: float = 30.0
    database_idle_in_transaction_timeout_s: float = 60.0
    # `miner crawls` and `miner doctor` call a running crawl that stored no run for this long
    # "stalled", and name the repositories still in flight.
    crawl_stall_after_s: float = 1800.0
    broker_url: str | None = None
    # Redis re-delivers a task whose worker died unacknowledged after this long (default: the
    # mine time limit plus five minutes, so a slow task is never handed out twice).
    broker_visibility_timeout_s: int | None = None
    topics: list[str] = Field(default_factory=lambda: ["mlflow-projects"])
    rules: str = "mlflow"
    workers: int = Field(default_factory=lambda: max(1, os.cpu_count() or 1))
    work_dir: str | None = None
    github: GithubSettings = Field(default_factory=GithubSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings)

    @field_validator("database_url")
    @classmethod
    def _use_psycopg_driver(cls, url: str) -> str:
        """postgres:// and postgresql:// URLs get the psycopg 3 driver we install."""
        for prefix in ("postgres://", "postgresql://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        yaml_path = Path(os.environ.get("MINER_CONFIG", "config.yaml"))
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if yaml_path.is_file():
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=yaml_path))
        return tuple(sources)


def load_settings(**overrides: Any) -> Settings:
    """Read settings now (not at import), so tests and the CLI see the current environment."""
    return Settings(**overrides)
