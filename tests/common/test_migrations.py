"""Migrations: upgrade from empty, downgrade to base, models in step with revisions, the advisory lock."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator

import asyncpg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from prosaas_common import models  # noqa: F401
from prosaas_common.db import Base
from prosaas_common.migrate import MIGRATION_LOCK_KEY, run_migrations
from prosaas_common.settings import to_asyncpg_url
from tests.support import closed_port, create_database, database_dsn, drop_database, run_module, service_env

EXPECTED_TABLES = {
    "alembic_version",
    "message_automations",
    "followup_rules",
    "outbound_messages",
    "calls",
    "call_turns",
    "outbound_call_runs",
    "businesses",
    "users",
    "auth_sessions",
    "refresh_tokens",
    "audit_events",
    "outbound_emails",
    "password_reset_tokens",
    "business_phone_numbers",
    "lead_statuses",
    "business_settings",
    "leads",
    "lead_notes",
    "lead_status_changes",
    "lead_activities",
    "lead_imports",
    "lead_intake_endpoints",
    "lead_intake_receipts",
    "background_jobs",
    "domain_events",
    "calendars",
    "appointments",
    "webhook_deliveries",
    "dead_letters",
    "reminders",
    "notifications",
}


@pytest.fixture
async def empty_database() -> AsyncIterator[str]:
    name = await create_database("prosaas_migr")
    try:
        yield database_dsn(name)
    finally:
        await drop_database(name)


async def public_tables(url: str) -> set[str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    finally:
        await conn.close()
    return {row["tablename"] for row in rows}


async def current_revision(url: str) -> str | None:
    conn = await asyncpg.connect(url)
    try:
        value = await conn.fetchval("SELECT version_num FROM alembic_version")
    finally:
        await conn.close()
    return str(value) if value is not None else None


async def test_upgrade_from_empty_then_downgrade_to_base(empty_database: str) -> None:
    assert await public_tables(empty_database) == set()
    await run_migrations(empty_database, "upgrade", "head", lock_timeout=10)
    assert await public_tables(empty_database) == EXPECTED_TABLES
    assert await current_revision(empty_database) is not None
    await run_migrations(empty_database, "downgrade", "base", lock_timeout=10)
    assert await public_tables(empty_database) == {"alembic_version"}
    assert await current_revision(empty_database) is None
    await run_migrations(empty_database, "upgrade", "head", lock_timeout=10)
    assert await public_tables(empty_database) == EXPECTED_TABLES


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def test_models_match_the_migrations(empty_database: str) -> None:
    await run_migrations(empty_database, "upgrade", "head", lock_timeout=10)
    engine = create_async_engine(to_asyncpg_url(empty_database))
    try:
        async with engine.connect() as conn:
            differences = await conn.run_sync(_diff)
    finally:
        await engine.dispose()
    assert differences == [], "models and migrations differ: write a revision"


def run_cli(url: str, *args: str, lock_timeout: str = "60") -> subprocess.CompletedProcess[str]:
    env = service_env({"DATABASE_URL": url, "MIGRATION_LOCK_TIMEOUT": lock_timeout})
    return run_module(["-m", "prosaas_common.migrate", *args], env, timeout=120)


async def test_second_runner_exits_non_zero_while_the_lock_is_held(empty_database: str) -> None:
    holder = await asyncpg.connect(empty_database)
    try:
        await holder.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
        blocked = run_cli(empty_database, "upgrade", "head", lock_timeout="1")
        assert blocked.returncode == 3
        assert "could not get the migration lock within 1s" in blocked.stderr
        assert await public_tables(empty_database) == set(), "a blocked runner must not migrate"
    finally:
        await holder.close()  # the first runner finishes: its session lock goes with it
    done = run_cli(empty_database, "upgrade", "head")
    assert done.returncode == 0, done.stderr
    assert await public_tables(empty_database) == EXPECTED_TABLES


async def test_runner_releases_the_lock_when_done(empty_database: str) -> None:
    await run_migrations(empty_database, "upgrade", "head", lock_timeout=10)
    probe = await asyncpg.connect(empty_database)
    try:
        assert await probe.fetchval("SELECT pg_try_advisory_lock($1)", MIGRATION_LOCK_KEY) is True
    finally:
        await probe.close()


def test_unreachable_database_fails_with_a_clear_message() -> None:
    done = run_cli("postgresql://postgres@127.0.0.1:1/none", "upgrade", "head", lock_timeout="1")
    assert done.returncode == 1
    assert "upgrade head failed" in done.stderr


async def test_wait_for_db_gives_up_with_a_clear_failure_after_its_budget() -> None:
    done = run_cli(
        f"postgresql://postgres@127.0.0.1:{closed_port()}/none", "upgrade", "head", "--wait-for-db", "1.5"
    )
    assert done.returncode == 1
    assert "upgrade head failed" in done.stderr
    waits = [line for line in done.stdout.splitlines() if "migrate.waiting_for_database" in line]
    assert len(waits) == 1, "a repeated wait is logged once at WARNING, then quietly"


async def test_wait_for_db_proceeds_once_the_database_answers(empty_database: str) -> None:
    done = run_cli(empty_database, "upgrade", "head", "--wait-for-db", "30")
    assert done.returncode == 0, done.stderr
    assert await public_tables(empty_database) == EXPECTED_TABLES
