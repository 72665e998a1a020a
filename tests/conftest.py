"""Fixtures for every suite: one migrated Postgres database per test run, a clean Redis db per test.

Postgres: a database ``prosaas_test_<random>`` is created and migrated once per run and dropped at the
end; tables are truncated after each test that used it. Redis: the run's own database (see
``tests.support.TEST_REDIS_URL``: db 15 unless another run holds it) is flushed before and after each test
that uses it. Nothing is left behind.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
from arq.connections import ArqRedis
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from prosaas_common.db import Base
from prosaas_common.migrate import run_migrations
from prosaas_common.redis import create_arq_pool, create_redis
from prosaas_common.settings import to_asyncpg_url
from tests.support import TEST_REDIS_URL, create_database, database_dsn, drop_database


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """URL of a freshly migrated database that lives for the whole test run."""
    name = asyncio.run(create_database())
    url = database_dsn(name)
    try:
        asyncio.run(run_migrations(url, "upgrade", "head", lock_timeout=30))
        yield url
    finally:
        asyncio.run(drop_database(name))


@pytest.fixture
async def db_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on the run's database; every table is emptied after the test."""
    engine = create_async_engine(to_asyncpg_url(database_url))
    try:
        yield engine
    finally:
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        async with engine.begin() as conn:
            await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        await engine.dispose()


@pytest.fixture
def redis_url() -> Iterator[str]:
    """``TEST_REDIS_URL``, empty at the start of the test and emptied again after it."""
    client = SyncRedis.from_url(TEST_REDIS_URL)
    client.flushdb()
    try:
        yield TEST_REDIS_URL
    finally:
        client.flushdb()
        client.close()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    """A client (decoded responses) on the flushed test Redis db."""
    client = create_redis(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def pool(redis_url: str) -> AsyncIterator[ArqRedis]:
    """An arq pool on the flushed test Redis db, for enqueueing and inspecting jobs."""
    arq_pool = await create_arq_pool(redis_url)
    try:
        yield arq_pool
    finally:
        await arq_pool.aclose(close_connection_pool=True)


@pytest.fixture
def service_settings_env(
    database_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """Point settings (in this process) at the test database and Redis; returns the variables set."""
    values = {
        "APP_ENV": "test",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values
