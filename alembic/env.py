"""Alembic environment. The migration runner hands in a connection that already holds the advisory
lock; the plain ``alembic`` command (e.g. ``alembic revision --autogenerate``) opens its own."""

from __future__ import annotations

import asyncio

from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from alembic import context
from prosaas_common import models  # noqa: F401  (registers every table on the metadata)
from prosaas_common.db import Base
from prosaas_common.settings import CommonSettings, to_asyncpg_url

target_metadata = Base.metadata


def _configure_and_run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


async def _run_with_own_engine(url: str) -> None:
    engine = create_async_engine(url, poolclass=NullPool)
    async with engine.connect() as connection:
        await connection.run_sync(_configure_and_run)
        await connection.commit()
    await engine.dispose()


def main() -> None:
    if context.is_offline_mode():
        url = context.config.get_main_option("sqlalchemy.url") or CommonSettings().migration_database_url
        context.configure(url=to_asyncpg_url(url), target_metadata=target_metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _configure_and_run(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url") or CommonSettings().migration_database_url
    asyncio.run(_run_with_own_engine(to_asyncpg_url(url)))


main()
