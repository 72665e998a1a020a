"""Pre-flight for `make dev`: do Postgres and Redis answer at the configured URLs?

On failure it prints one clear line per dependency saying how to start it, and exits 1. With
``--create-database`` (development only) a missing database is created.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from urllib.parse import urlsplit

import asyncpg
from redis.asyncio import Redis

from prosaas_common.settings import AppEnv, CommonSettings, load_settings

START_POSTGRES = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
START_REDIS = 'redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no'


def _plain_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def _where(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or ''}".rstrip(":")


async def _check_postgres(url: str, create: bool) -> str | None:
    dsn = _plain_dsn(url)
    try:
        conn = await asyncpg.connect(dsn, timeout=3)
    except asyncpg.InvalidCatalogNameError:
        if not create:
            return f"Postgres answers but the database in DATABASE_URL does not exist ({_where(url)})"
        database = urlsplit(dsn).path.lstrip("/")
        admin = await asyncpg.connect(dsn.rsplit("/", 1)[0] + "/postgres", timeout=3)
        try:
            await admin.execute(f'CREATE DATABASE "{database}"')
        finally:
            await admin.close()
        print(f"created database {database!r}")
        return None
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        return (
            f"Postgres is not answering at {_where(url)} (DATABASE_URL): {type(exc).__name__}: {exc}. "
            f"Start it: {START_POSTGRES}"
        )
    await conn.close()
    return None


async def _check_redis(url: str) -> str | None:
    client = Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
    try:
        await client.ping()
    except Exception as exc:
        reason = str(exc).rstrip(".")
        return f"Redis is not answering at {_where(url)} (REDIS_URL): {reason}. Start it: {START_REDIS}"
    finally:
        await client.aclose()
    return None


async def run_checks(settings: CommonSettings, create_database: bool) -> list[str]:
    create = create_database and settings.app_env is AppEnv.DEVELOPMENT
    results = await asyncio.gather(
        _check_postgres(settings.database_url, create), _check_redis(settings.redis_url)
    )
    return [problem for problem in results if problem]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m prosaas_common.checks", description=__doc__)
    parser.add_argument("--create-database", action="store_true", help="create a missing dev database")
    args = parser.parse_args(argv)
    settings = load_settings(CommonSettings, "prosaas-check")
    problems = asyncio.run(run_checks(settings, args.create_database))
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print(f"postgres {_where(settings.database_url)} and redis {_where(settings.redis_url)} answer")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
