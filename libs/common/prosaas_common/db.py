"""Async SQLAlchemy engine, sessions and the declarative base.

One engine per process (a real pool with pre-ping); one session per request or job. The boundary that
opened the session commits (:func:`unit_of_work`); code below it only flushes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from datetime import datetime

from sqlalchemy import DateTime, MetaData, func
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from prosaas_common.logging import get_logger
from prosaas_common.settings import CommonSettings, to_asyncpg_url

log = get_logger("prosaas.db")

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now(), nullable=False
    )


def one_of(column: str, values: Iterable[str]) -> str:
    """The SQL of a check constraint keeping ``column`` to ``values``: ``status IN ('a', 'b')``."""
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


def create_engine(settings: CommonSettings, application_name: str, *, url: str | None = None) -> AsyncEngine:
    """The process-wide engine. Creating it does not connect, so a service starts while the DB is down."""
    return create_async_engine(
        to_asyncpg_url(url) if url else settings.async_database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args={
            # Plan each execution with its real parameters: a generic plan of a prepared statement
            # ignores the values, and chose a full scan for lead search (``LIKE $1``) after 5 runs.
            "server_settings": {"application_name": application_name, "plan_cache_mode": "force_custom_plan"},
            "timeout": settings.readiness_timeout * 5,
        },
    )


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=True)


AFTER_COMMIT = "prosaas_after_commit"


def after_commit(session: AsyncSession, action: Callable[[], Awaitable[object]]) -> None:
    """Run ``action`` once the session's transaction committed (never if it rolls back).

    Jobs are enqueued this way, so a worker never sees a row that was rolled back. If the action fails
    after the commit, the work is not lost where an outbox row carries it (it stays pending).
    """
    session.info.setdefault(AFTER_COMMIT, []).append(action)


@asynccontextmanager
async def unit_of_work(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """Open a session for one request or job: commit when the block succeeds, roll back when it raises,
    then run what :func:`after_commit` registered."""
    async with factory() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            session.info.pop(AFTER_COMMIT, None)
            await session.rollback()
            raise
        for action in session.info.pop(AFTER_COMMIT, []):
            try:
                await action()
            except Exception as exc:
                log.warning("db.after_commit_failed", error=f"{type(exc).__name__}: {exc}")


def pool_status(engine: AsyncEngine) -> dict[str, int]:
    """Connections of the engine's pool: configured size, checked out, idle and overflow."""
    pool = engine.pool
    size = getattr(pool, "size", lambda: 0)()
    return {
        "size": int(size),
        "checked_out": int(getattr(pool, "checkedout", lambda: 0)()),
        "idle": int(getattr(pool, "checkedin", lambda: 0)()),
        "overflow": max(0, int(getattr(pool, "overflow", lambda: 0)())),
    }
