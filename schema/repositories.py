"""Repository rows: the idempotent upsert that enumeration and mining share, and reads by name or id.

Store conventions (as in the FastAPI template's crud.py): every function takes a keyword-only
`session` and never opens one itself; writing functions commit, so a store function returns with
its work committed. Call them on a session with nothing else pending.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, select

from schema.models import Repository, utc_now

_REPOSITORY_METADATA = frozenset(Repository.model_fields) - {"id", "full_name"}


def upsert_repository(
    *,
    session: Session,
    full_name: str,
    clone_url: str | None = None,
    default_branch: str | None = None,
    **metadata: Any,
) -> Repository:
    """The repository called `full_name`, created if new; fields given as None stay as they are.

    Safe against a concurrent upsert of the same name: the row is created with
    INSERT .. ON CONFLICT DO NOTHING, then read and updated.
    """
    unknown = set(metadata) - _REPOSITORY_METADATA
    if unknown:
        raise TypeError(f"unknown Repository fields: {', '.join(sorted(unknown))}")
    values = {"clone_url": clone_url, "default_branch": default_branch, **metadata}
    values = {key: value for key, value in values.items() if value is not None}

    insert_ignore(
        session,
        Repository,
        {"full_name": full_name, "topics": [], "archived": False, "fork": False, "first_seen_at": utc_now(), **values},
        conflict_columns=["full_name"],
    )
    repository = session.exec(
        select(Repository).where(Repository.full_name == full_name).execution_options(populate_existing=True)
    ).one()
    for key, value in values.items():
        setattr(repository, key, value)
    session.add(repository)
    session.commit()
    return repository


def insert_ignore(session: Session, table: type, row: dict[str, Any], *, conflict_columns: list[str]) -> None:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        statement = postgresql.insert(table).values(row)
    elif dialect == "sqlite":
        statement = sqlite.insert(table).values(row)
    else:  # pragma: no cover - only SQLite and PostgreSQL are supported
        raise NotImplementedError(f"no upsert for {dialect}")
    session.exec(statement.on_conflict_do_nothing(index_elements=conflict_columns))


def get_repository(*, session: Session, full_name: str) -> Repository | None:
    return session.exec(
        select(Repository).where(Repository.full_name == full_name).execution_options(populate_existing=True)
    ).one_or_none()


def load_repository(*, session: Session, repository_id: int) -> Repository:
    """By id, as tasks receive it; a missing id is a bug in the caller, hence LookupError."""
    repository = session.get(Repository, repository_id, populate_existing=True)
    if repository is None:
        raise LookupError(f"no repository with id {repository_id}")
    return repository
