"""``maintenance.cleanup`` on real Postgres: per table, what has outlived its use goes, and everything
still pending, recent, unexpired or in use stays; a second run deletes nothing."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Table, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from prosaas_common.db import Base
from prosaas_common.jobs import JobName, Queue
from prosaas_common.models import (
    AuthSession,
    BackgroundJob,
    Business,
    DeadLetter,
    DomainEvent,
    Notification,
    OutboundEmail,
    PasswordResetToken,
    RefreshToken,
    User,
    WebhookDelivery,
)
from prosaas_common.settings import ConfigError, build_settings
from prosaas_scheduler.schedules import SCHEDULES
from prosaas_worker.context import WorkerResources
from prosaas_worker.jobs import maintenance
from prosaas_worker.settings import WorkerConfig
from tests.worker.conftest import LogCapture

Cleanup = Callable[..., Awaitable[dict[str, int]]]
NOW = datetime.now(UTC)


def ago(**delta: float) -> datetime:
    return NOW - timedelta(**delta)


def ahead(**delta: float) -> datetime:
    return NOW + timedelta(**delta)


@pytest.fixture
async def cleanup(database_url: str, redis_url: str) -> AsyncIterator[Cleanup]:
    """Run the job the way the worker does; keyword arguments override WorkerConfig fields."""
    created: list[WorkerResources] = []

    async def run(**settings: Any) -> dict[str, int]:
        config = build_settings(
            WorkerConfig, app_env="test", database_url=database_url, redis_url=redis_url, **settings
        )
        resources = WorkerResources.create(config)
        created.append(resources)
        ctx = resources.job_context(Queue.LOW)
        ctx.update(job_id="schedule:daily-cleanup:1", job_try=1)
        return await maintenance.cleanup(ctx, scheduled_for="2026-01-01T03:15:00+00:00")

    yield run
    for resources in created:
        await resources.dispose()


class Rows:
    """Inserts rows with Core (timestamps given explicitly) and reads back which ids are left."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def add(self, model: type[Base], **values: Any) -> Any:
        table: Table = model.__table__  # type: ignore[assignment]
        async with self.engine.begin() as conn:
            return (await conn.execute(insert(table).values(**values).returning(table.c.id))).scalar_one()

    async def left(self, model: type[Base]) -> set[Any]:
        table: Table = model.__table__  # type: ignore[assignment]
        async with self.engine.connect() as conn:
            return set((await conn.execute(select(table.c.id))).scalars())


@pytest.fixture
async def rows(db_engine: AsyncEngine) -> Rows:
    return Rows(db_engine)


async def tenant(rows: Rows) -> tuple[int, int]:
    business_id = await rows.add(Business, name="Dental")
    user_id = await rows.add(User, business_id=business_id, email="owner@dental.example", role="owner")
    return business_id, user_id


async def test_old_finished_rows_go_and_everything_in_use_stays(
    cleanup: Cleanup, rows: Rows, info_logs: LogCapture
) -> None:
    business_id, user_id = await tenant(rows)
    add = rows.add
    gone: dict[type[Base], set[Any]] = {}
    kept: dict[type[Base], set[Any]] = {}

    def mark(model: type[Base], *, go: list[Any], stay: list[Any]) -> None:
        gone[model] = set(go)
        kept[model] = set(stay)

    # password-reset links: expired or used, once past the one-hour rate-limit window
    reset = {"user_id": user_id}
    mark(
        PasswordResetToken,
        go=[
            await add(
                PasswordResetToken, **reset, token_hash="a", created_at=ago(days=2), expires_at=ago(days=2)
            ),
            await add(
                PasswordResetToken,
                **reset,
                token_hash="b",
                created_at=ago(hours=2),
                expires_at=ahead(days=5),
                used_at=ago(hours=1),
            ),
        ],
        stay=[
            await add(
                PasswordResetToken,
                **reset,
                token_hash="c",
                created_at=ago(minutes=10),
                expires_at=ahead(minutes=50),
                used_at=ago(minutes=5),
            ),
            await add(
                PasswordResetToken,
                **reset,
                token_hash="d",
                created_at=ago(minutes=10),
                expires_at=ahead(minutes=50),
            ),
            await add(
                PasswordResetToken, **reset, token_hash="e", created_at=ago(days=2), expires_at=ahead(days=5)
            ),
        ],
    )

    # sessions: expired or revoked go (with their tokens); in a live one only expired tokens go
    def session(**values: Any) -> dict[str, Any]:
        return {"id": uuid.uuid4(), "user_id": user_id, "client": "browser", **values}

    live = await add(AuthSession, **session(expires_at=ahead(days=20)))
    expired = await add(AuthSession, **session(expires_at=ago(days=1)))
    revoked = await add(AuthSession, **session(expires_at=ahead(days=20), revoked_at=ago(minutes=1)))
    mark(AuthSession, go=[expired, revoked], stay=[live])
    mark(
        RefreshToken,
        go=[
            await add(RefreshToken, session_id=live, token_hash="r1", expires_at=ago(minutes=1)),
            await add(RefreshToken, session_id=expired, token_hash="r2", expires_at=ago(days=1)),
            await add(RefreshToken, session_id=revoked, token_hash="r3", expires_at=ahead(days=20)),
        ],
        stay=[
            await add(RefreshToken, session_id=live, token_hash="r4", expires_at=ahead(days=20)),
            # used but unexpired: presenting it again must still be recognised as a reuse
            await add(
                RefreshToken, session_id=live, token_hash="r5", expires_at=ahead(days=20), used_at=ago(days=3)
            ),
        ],
    )

    # background jobs: finished (succeeded or failed) longer ago than the retention
    bg = {"business_id": business_id, "kind": "leads.bulk"}
    mark(
        BackgroundJob,
        go=[
            await add(
                BackgroundJob, **bg, state="succeeded", created_at=ago(days=41), finished_at=ago(days=40)
            ),
            await add(BackgroundJob, **bg, state="failed", created_at=ago(days=41), finished_at=None),
        ],
        stay=[
            await add(
                BackgroundJob, **bg, state="succeeded", created_at=ago(days=41), finished_at=ago(days=5)
            ),
            await add(BackgroundJob, **bg, state="running", created_at=ago(days=41)),
            await add(BackgroundJob, **bg, state="queued", created_at=ago(days=41)),
        ],
    )

    # domain events: dispatched longer ago than the retention (undispatched ones are the outbox)
    event = {"business_id": business_id, "type": "lead.created", "payload": {}}
    old_event = await add(DomainEvent, **event, created_at=ago(days=41), dispatched_at=ago(days=40))
    mark(
        DomainEvent,
        go=[old_event],
        stay=[
            await add(DomainEvent, **event, created_at=ago(days=5), dispatched_at=ago(days=5)),
            await add(DomainEvent, **event, created_at=ago(days=41)),
        ],
    )

    # webhook deliveries: delivered or dead longer ago than the retention
    hook = {
        "business_id": business_id,
        "event_type": "lead.created",
        "url": "https://h.example/",
        "payload": {},
    }
    mark(
        WebhookDelivery,
        go=[
            await add(
                WebhookDelivery,
                **hook,
                event_id=old_event,
                status="delivered",
                created_at=ago(days=41),
                delivered_at=ago(days=40),
            ),
            await add(WebhookDelivery, **hook, status="dead", created_at=ago(days=40)),
        ],
        stay=[
            await add(
                WebhookDelivery,
                **(hook | {"url": "https://other.example/"}),
                event_id=old_event,
                status="pending",
                created_at=ago(days=40),
            ),
            await add(
                WebhookDelivery, **hook, status="delivered", created_at=ago(days=5), delivered_at=ago(days=5)
            ),
            # re-sent and delivered recently
            await add(
                WebhookDelivery, **hook, status="delivered", created_at=ago(days=41), delivered_at=ago(days=2)
            ),
        ],
    )

    # outbound e-mails: sent or failed longer ago than the retention
    mail = {"to_address": "a@b.example", "subject": "s", "body_text": "b"}
    mark(
        OutboundEmail,
        go=[
            await add(
                OutboundEmail,
                **mail,
                dedup_key="m1",
                status="sent",
                created_at=ago(days=41),
                sent_at=ago(days=40),
            ),
            await add(OutboundEmail, **mail, dedup_key="m2", status="failed", created_at=ago(days=40)),
        ],
        stay=[
            await add(OutboundEmail, **mail, dedup_key="m3", status="pending", created_at=ago(days=40)),
            await add(
                OutboundEmail,
                **mail,
                dedup_key="m4",
                status="sent",
                created_at=ago(days=5),
                sent_at=ago(days=5),
            ),
        ],
    )

    # notifications: read longer ago than the retention
    note = {"business_id": business_id, "user_id": user_id, "kind": "reminder", "title": "t"}
    mark(
        Notification,
        go=[await add(Notification, **note, created_at=ago(days=45), read_at=ago(days=40))],
        stay=[
            await add(Notification, **note, created_at=ago(days=45), read_at=ago(days=5)),
            await add(Notification, **note, created_at=ago(days=45)),
        ],
    )

    # dead letters: their own, longer retention
    dead = {"job_name": "email.deliver", "args": [1], "kwargs": {}, "tries": 8, "error": "boom"}
    mark(
        DeadLetter,
        go=[await add(DeadLetter, **dead, created_at=ago(days=91))],
        stay=[await add(DeadLetter, **dead, created_at=ago(days=40))],
    )

    counts = await cleanup()

    assert counts == {
        "password_reset_tokens": 2,
        "refresh_tokens": 2,  # the revoked session's unexpired token goes with its session
        "auth_sessions": 2,
        "background_jobs": 2,
        "webhook_deliveries": 2,
        "domain_events": 1,
        "outbound_emails": 2,
        "notifications": 1,
        "dead_letters": 1,
    }
    for model in gone:
        left = await rows.left(model)
        assert left == kept[model], model.__tablename__
        assert not left & gone[model], model.__tablename__
    [done] = info_logs.events("cleanup.done")
    assert done["level"] == "info"
    assert done["total"] == 15
    assert done["deleted"] == {table: n for table, n in counts.items() if n}

    assert await cleanup() == dict.fromkeys(counts, 0)
    assert len(info_logs.events("cleanup.done")) == 1, "a run that deletes nothing logs no INFO line"
    for model, ids in kept.items():
        assert await rows.left(model) == ids, model.__tablename__


async def test_retention_comes_from_the_settings(cleanup: Cleanup, rows: Rows) -> None:
    business_id, _ = await tenant(rows)
    recent = await rows.add(
        DomainEvent, business_id=business_id, type="t", payload={}, dispatched_at=ago(days=5)
    )
    dead = {"job_name": "x.y", "args": [], "kwargs": {}, "tries": 1, "error": "e"}
    letter = await rows.add(DeadLetter, **dead, created_at=ago(days=5))

    counts = await cleanup(cleanup_retention_days=6, cleanup_dead_letter_retention_days=6)
    assert (counts["domain_events"], counts["dead_letters"]) == (0, 0)

    counts = await cleanup(cleanup_retention_days=4, cleanup_dead_letter_retention_days=6)
    assert (counts["domain_events"], counts["dead_letters"]) == (1, 0)
    assert recent not in await rows.left(DomainEvent)

    counts = await cleanup(cleanup_dead_letter_retention_days=4)
    assert counts["dead_letters"] == 1
    assert letter not in await rows.left(DeadLetter)


async def test_large_backlogs_go_in_bounded_batches(
    cleanup: Cleanup, rows: Rows, db_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    business_id, _ = await tenant(rows)
    async with db_engine.begin() as conn:
        await conn.execute(
            insert(DomainEvent),
            [
                {
                    "business_id": business_id,
                    "type": "t",
                    "payload": {},
                    "dispatched_at": ago(days=40 + i % 3),
                }
                for i in range(25)
            ],
        )
    keep = await rows.add(DomainEvent, business_id=business_id, type="t", payload={})
    batches: list[int] = []
    real_batch = maintenance.delete_batch

    async def counting(ctx: Any, rule: maintenance.Rule) -> int:
        deleted = await real_batch(ctx, rule)
        if rule.table == "domain_events":
            batches.append(deleted)
        return deleted

    monkeypatch.setattr(maintenance, "BATCH", 10)
    monkeypatch.setattr(maintenance, "delete_batch", counting)

    assert (await cleanup())["domain_events"] == 25
    assert batches == [10, 10, 5]
    assert await rows.left(DomainEvent) == {keep}


def test_retention_settings_must_be_at_least_a_day() -> None:
    for field in ("cleanup_retention_days", "cleanup_dead_letter_retention_days"):
        with pytest.raises(ConfigError, match=field.upper()):
            build_settings(WorkerConfig, app_env="test", **{field: 0})
    config = build_settings(WorkerConfig, app_env="test")
    assert (config.cleanup_retention_days, config.cleanup_dead_letter_retention_days) == (30, 90)


def test_cleanup_runs_daily_on_the_low_queue() -> None:
    [schedule] = [s for s in SCHEDULES if s.job == JobName.MAINTENANCE_CLEANUP]
    assert (schedule.name, schedule.queue, schedule.every) == ("daily-cleanup", Queue.LOW, None)
    assert (schedule.cron, schedule.timezone) == ("15 3 * * *", "UTC")
