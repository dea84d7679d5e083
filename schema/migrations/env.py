"""Alembic environment: the models' metadata, and a connection from `schema.db` or the settings.

`schema.db.upgrade` hands its own connection in through `config.attributes["connection"]`, so
no alembic.ini is needed at run time. For writing new revisions from the repository root:
`alembic -c schema/migrations/alembic.ini revision --autogenerate -m "..."` (the URL comes from
`sqlalchemy.url` there if set, else from the miner settings: `MINER_DATABASE_URL`, config.yaml).
"""

from __future__ import annotations

from typing import Any, Literal

import sqlalchemy as sa
from alembic import context
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel
from sqlmodel.sql.sqltypes import AutoString

import schema.models  # noqa: F401  (fills SQLModel.metadata with the tables)

config = context.config
target_metadata = SQLModel.metadata


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    """Autogenerate writes our column types as plain SQLAlchemy types, as 0001 does."""
    if type_ == "type" and isinstance(obj, sa.TypeDecorator):
        impl = obj.impl_instance if hasattr(obj, "impl_instance") else obj.impl
        return f"sa.{impl!r}"
    if type_ == "type" and isinstance(obj, AutoString):
        return "sa.String()"
    return False


CONFIGURE_OPTIONS = {
    "target_metadata": target_metadata,
    "render_as_batch": True,  # SQLite can only ALTER through a copied table
    "compare_type": True,
    "render_item": render_item,
}


def _database_url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from miner.core.settings import load_settings

    return load_settings().database_url


def run_migrations_offline() -> None:
    context.configure(url=_database_url(), literal_binds=True, **CONFIGURE_OPTIONS)
    with context.begin_transaction():
        context.run_migrations()


def _run(connection: Connection) -> None:
    context.configure(connection=connection, **CONFIGURE_OPTIONS)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from schema.db import make_engine

    with make_engine(_database_url()).begin() as connection:
        _run(connection)


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
