"""Migration runner: alembic under a Postgres advisory lock.

Several containers may start at once; only one migrates at a time. If the lock is not obtained within
``MIGRATION_LOCK_TIMEOUT`` seconds the runner exits non-zero, so nothing that waits on it starts on a
stale schema. Usage: ``prosaas-migrate upgrade head`` / ``downgrade base`` / ``current``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

import asyncpg
from alembic.config import Config
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from alembic import command
from prosaas_common.logging import RepeatedFailureLog, configure_from_settings, get_logger
from prosaas_common.settings import CommonSettings, load_settings, to_asyncpg_url

# Arbitrary but fixed: every migrator of this database contends for the same key ("prosaas" in ASCII).
MIGRATION_LOCK_KEY = 0x70726F73616173
LOCK_NOT_AVAILABLE = "55P03"
EXIT_LOCK_TIMEOUT = 3
EXIT_FAILED = 1
log = get_logger("prosaas.migrate")


class MigrationLockTimeout(RuntimeError):
    pass


def find_alembic_ini() -> Path:
    """``ALEMBIC_CONFIG`` if set, else ``alembic.ini`` in the working directory or one of its parents."""
    configured = os.environ.get("ALEMBIC_CONFIG")
    if configured:
        return Path(configured)
    for folder in (Path.cwd(), *Path.cwd().parents, *Path(__file__).resolve().parents):
        candidate = folder / "alembic.ini"
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("alembic.ini not found (run from the project root or set ALEMBIC_CONFIG)")


def alembic_config(url: str) -> Config:
    ini = find_alembic_ini()
    config = Config(str(ini))
    config.set_main_option("script_location", str(ini.parent / "alembic"))
    config.set_main_option("sqlalchemy.url", to_asyncpg_url(url).replace("%", "%%"))
    return config


def _run_alembic(connection: Connection, config: Config, action: str, revision: str) -> None:
    config.attributes["connection"] = connection
    if action == "upgrade":
        command.upgrade(config, revision)
    elif action == "downgrade":
        command.downgrade(config, revision)
    elif action == "current":
        command.current(config, verbose=False)
    else:  # argparse restricts the choices; this guards programmatic callers
        raise ValueError(f"unknown action {action!r}")


async def run_migrations(url: str, action: str, revision: str = "head", lock_timeout: float = 60.0) -> None:
    """Take the advisory lock (waiting at most ``lock_timeout`` s), run alembic, release the lock."""
    engine = create_async_engine(to_asyncpg_url(url), poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            await conn.execute(text(f"SET lock_timeout = {max(1, int(lock_timeout * 1000))}"))
            try:
                await conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            except DBAPIError as exc:
                if getattr(exc.orig, "sqlstate", None) == LOCK_NOT_AVAILABLE:
                    raise MigrationLockTimeout(
                        f"could not get the migration lock within {lock_timeout:g}s: another migration "
                        "is running (raise MIGRATION_LOCK_TIMEOUT or wait for it to finish)"
                    ) from None
                raise
            await conn.execute(text("RESET lock_timeout"))
            await conn.commit()
            log.info("migrate.lock_acquired", action=action, revision=revision)
            try:
                config = alembic_config(url)
                await conn.run_sync(_run_alembic, config, action, revision)
                await conn.commit()
            finally:
                await conn.rollback()
                await conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
                await conn.commit()
    finally:
        await engine.dispose()
    log.info("migrate.done", action=action, revision=revision)


async def wait_for_database(url: str, wait_s: float, poll_s: float = 1.0) -> None:
    """Poll until Postgres accepts a connection or ``wait_s`` passes (then the last error is raised).

    A one-shot migrate container may start before a managed database's DNS name or port answers;
    waiting here beats exiting non-zero, which would stop every service that depends on it.
    """
    failures = RepeatedFailureLog(log)
    deadline = time.monotonic() + wait_s
    while True:
        try:
            conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1), timeout=5)
        except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
            if time.monotonic() + poll_s > deadline:
                raise
            failures.failure("database", "migrate.waiting_for_database", error=f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(poll_s)
            continue
        await conn.close()
        failures.recovered("database", "migrate.database_answered")
        return


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="prosaas-migrate", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["upgrade", "downgrade", "current"], nargs="?", default="upgrade")
    parser.add_argument("revision", nargs="?", default=None, help="target (default: head; base to downgrade)")
    parser.add_argument(
        "--wait-for-db",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait up to SECONDS for Postgres to accept connections before migrating (default 0)",
    )
    args = parser.parse_args(argv)
    settings = load_settings(CommonSettings, "prosaas-migrate")
    configure_from_settings(settings, "migrate")
    revision = args.revision or ("base" if args.action == "downgrade" else "head")
    url = settings.migration_database_url
    try:
        if args.wait_for_db > 0:
            asyncio.run(wait_for_database(url, args.wait_for_db))
        asyncio.run(run_migrations(url, args.action, revision, settings.migration_lock_timeout))
    except MigrationLockTimeout as exc:
        print(f"prosaas-migrate: {exc}", file=sys.stderr)
        return EXIT_LOCK_TIMEOUT
    except Exception as exc:
        log.error(
            "migrate.failed", action=args.action, revision=revision, error=f"{type(exc).__name__}: {exc}"
        )
        print(
            f"prosaas-migrate: {args.action} {revision} failed: {type(exc).__name__}: {exc}", file=sys.stderr
        )
        return EXIT_FAILED
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
