"""Outbound webhooks: dispatch creates delivery rows, ``webhooks.deliver`` POSTs them signed to a real
HTTP receiver on 127.0.0.1, retries with ``Retry(defer=…)`` and marks them dead after the last try."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from arq import Retry
from arq.connections import ArqRedis
from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from prosaas_common.db import create_session_factory, unit_of_work
from prosaas_common.jobs import Queue, enqueue
from prosaas_common.models import Business, BusinessSettings, DomainEvent, Notification, OutboundEmail, User
from prosaas_common.models.webhook import WebhookDelivery
from prosaas_common.provision import provision_business
from prosaas_common.webhooks import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    MAX_ATTEMPTS,
    RETRY_BASE_DELAYS_S,
    SIGNATURE_HEADER,
    verify,
)
from prosaas_worker.context import JobContext, WorkerResources
from prosaas_worker.jobs import ALL_JOBS
from prosaas_worker.jobs.events import HANDLERS, dispatch_event
from prosaas_worker.jobs.webhooks import JOB_NAME, create_deliveries, dead_notice, deliver
from prosaas_worker.notify import notify_staff
from prosaas_worker.registry import arq_functions
from prosaas_worker.retry import DnsRetry
from tests.support import closed_port, wait_until
from tests.worker.conftest import LogCapture, MakeConfig, RunGroup


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A tiny HTTP/1.1 server: answers the queued statuses in order, then ``default``."""

    statuses: list[int]
    default: int = 200
    requests: list[Received] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = (await reader.readline()).decode()
            headers: dict[str, str] = {}
            while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = line.decode().partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.requests.append(Received(request_line.split(" ")[1], headers, body))
            status = self.statuses.pop(0) if self.statuses else self.default
            writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno".encode())
            await writer.drain()
        finally:
            writer.close()


MakeReceiver = Callable[..., Any]


@pytest.fixture
async def receiver() -> AsyncIterator[MakeReceiver]:
    servers: list[asyncio.Server] = []

    async def start(statuses: list[int] | None = None, default: int = 200) -> Receiver:
        target = Receiver(list(statuses or []), default)
        server = await asyncio.start_server(target.handle, "127.0.0.1", 0)
        target.port = server.sockets[0].getsockname()[1]
        servers.append(server)
        return target

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


@pytest.fixture
async def ctx(make_config: MakeConfig, pool: ArqRedis) -> AsyncIterator[JobContext]:
    resources = WorkerResources.create(make_config())
    context = resources.job_context(Queue.DEFAULT, max_tries=MAX_ATTEMPTS)
    context.update(redis=pool, job_try=1)
    yield context
    await resources.dispose()


async def make_business(engine: AsyncEngine, **urls: str | None) -> int:
    async with unit_of_work(create_session_factory(engine)) as db:
        business = Business(name="Dental")
        db.add(business)
        await db.flush()
        await provision_business(db, business)
        await db.execute(
            update(BusinessSettings).where(BusinessSettings.business_id == business.id).values(**urls)
        )
        return business.id


async def add_event(engine: AsyncEngine, business_id: int, event_type: str = "lead.created") -> int:
    payload = {"lead": {"id": 7, "first_name": "Ada", "phone": "+14155550100"}}
    async with engine.begin() as conn:
        return int(
            (
                await conn.execute(
                    insert(DomainEvent)
                    .values(business_id=business_id, type=event_type, payload=payload)
                    .returning(DomainEvent.id)
                )
            ).scalar_one()
        )


async def deliveries(engine: AsyncEngine) -> list[Any]:
    async with engine.connect() as conn:
        table = WebhookDelivery.__table__
        return list((await conn.execute(select(table).order_by(table.c.id))).all())


async def secret_of(engine: AsyncEngine, business_id: int) -> str | None:
    async with engine.connect() as conn:
        return await conn.scalar(
            select(BusinessSettings.webhook_secret).where(BusinessSettings.business_id == business_id)
        )


async def run_round(ctx: JobContext, delivery_id: int, tries: int, since: int = 0) -> tuple[str, list[float]]:
    """Run the job like arq would: again after each Retry (without waiting), up to ``tries`` tries."""
    defers: list[float] = []
    for job_try in range(1, tries + 1):
        ctx["job_try"] = job_try
        try:
            return await deliver(ctx, delivery_id, since), defers
        except Retry as retry:
            defers.append((retry.defer_score or 0) / 1000)
    return "retrying", defers


def test_handler_is_registered_for_every_webhook_event() -> None:
    for event_type in (
        "lead.created",
        "lead.status_changed",
        "appointment.created",
        "appointment.updated",
        "appointment.cancelled",
        "call.completed",
    ):
        assert HANDLERS[event_type].count(create_deliveries) == 1, event_type
    [spec] = [s for s in ALL_JOBS if s.name == JOB_NAME]
    assert (spec.max_tries, spec.timeout_s) == (MAX_ATTEMPTS, 30)


async def test_fails_three_times_then_delivered_once_and_signed(
    ctx: JobContext, db_engine: AsyncEngine, pool: ArqRedis, receiver: MakeReceiver
) -> None:
    hooks: Receiver = await receiver([500, 503, 502])
    business_id = await make_business(db_engine, webhook_url=hooks.url, webhook_secret=None)
    event_id = await add_event(db_engine, business_id)

    assert await dispatch_event(ctx, event_id) == "dispatched"
    [row] = await deliveries(db_engine)
    assert (row.event_id, row.url, row.status, row.attempts) == (event_id, hooks.url, "pending", 0)
    assert await pool.zrange(Queue.DEFAULT.value, 0, -1) == [f"webhook:{row.id}:0".encode()]
    secret = await secret_of(db_engine, business_id)
    assert secret is not None  # generated: nothing goes out unsigned
    assert secret.startswith("whsec_")

    outcome, defers = await run_round(ctx, row.id, tries=MAX_ATTEMPTS)
    assert outcome == "delivered"
    assert len(defers) == 3
    for attempt, defer in enumerate(defers, start=1):
        base = RETRY_BASE_DELAYS_S[attempt - 1]
        assert base * 0.5 - 0.01 <= defer <= base + 0.01, (attempt, defer)

    [done] = await deliveries(db_engine)
    assert (done.status, done.attempts, done.last_status_code, done.last_error) == ("delivered", 4, 200, None)
    assert done.delivered_at is not None
    assert done.next_attempt_at is None
    assert len(hooks.requests) == 4
    bodies = {r.body for r in hooks.requests}
    assert len(bodies) == 1  # the same document every time
    for request in hooks.requests:
        assert request.path == "/hooks"
        assert request.headers[EVENT_HEADER.lower()] == "lead.created"
        assert request.headers[DELIVERY_HEADER.lower()] == str(row.id)
        assert verify(secret, request.headers[SIGNATURE_HEADER.lower()], request.body)
        assert not verify(secret + "x", request.headers[SIGNATURE_HEADER.lower()], request.body)
    document = json.loads(hooks.requests[0].body)
    assert document["id"] == row.id
    assert (document["event"], document["business_id"]) == ("lead.created", business_id)
    assert document["data"]["lead"]["first_name"] == "Ada"
    assert datetime.fromisoformat(document["created_at"]).tzinfo is not None

    # A duplicate job for a delivered row sends nothing.
    ctx["job_try"] = 1
    assert await deliver(ctx, row.id) == "skipped"
    assert len(hooks.requests) == 4


async def test_always_failing_receiver_ends_dead_with_one_warning(
    ctx: JobContext, db_engine: AsyncEngine, receiver: MakeReceiver, info_logs: LogCapture
) -> None:
    hooks: Receiver = await receiver(default=500)
    business_id = await make_business(db_engine, webhook_url=hooks.url, webhook_secret="whsec_known")
    event_id = await add_event(db_engine, business_id, "appointment.created")
    assert await dispatch_event(ctx, event_id) == "dispatched"
    [row] = await deliveries(db_engine)

    outcome, defers = await run_round(ctx, row.id, tries=MAX_ATTEMPTS)
    assert outcome == "dead"
    assert len(defers) == MAX_ATTEMPTS - 1
    assert len(hooks.requests) == MAX_ATTEMPTS
    assert all(verify("whsec_known", r.headers[SIGNATURE_HEADER.lower()], r.body) for r in hooks.requests)
    [dead] = await deliveries(db_engine)
    assert (dead.status, dead.attempts, dead.last_status_code) == ("dead", MAX_ATTEMPTS, 500)
    assert dead.last_error.startswith("HTTP 500")
    assert dead.next_attempt_at is None
    assert dead.delivered_at is None
    [warning] = info_logs.events("webhook.dead")
    assert (warning["level"], warning["delivery_id"], warning["attempts"]) == (
        "warning",
        row.id,
        MAX_ATTEMPTS,
    )
    assert await secret_of(db_engine, business_id) == "whsec_known"  # an existing secret is kept

    # Another job for the dead row does nothing.
    ctx["job_try"] = 1
    assert await deliver(ctx, row.id) == "skipped"
    assert len(hooks.requests) == MAX_ATTEMPTS


async def test_duplicate_dispatch_creates_one_row_per_url(
    ctx: JobContext, db_engine: AsyncEngine, pool: ArqRedis
) -> None:
    generic, status_url = "http://hooks.example/all", "http://hooks.example/status"
    business_id = await make_business(
        db_engine,
        webhook_url=generic,
        lead_status_webhook_url=status_url,
        call_completed_webhook_url=generic,  # the same URL twice: one delivery
    )
    changed = await add_event(db_engine, business_id, "lead.status_changed")
    completed = await add_event(db_engine, business_id, "call.completed")
    ignored = await add_event(db_engine, business_id, "lead.deleted")
    for event_id in (changed, completed, ignored):
        assert await dispatch_event(ctx, event_id) == "dispatched"
    # The same event dispatched again (its mark lost): no second row, no second job.
    async with db_engine.begin() as conn:
        await conn.execute(update(DomainEvent).where(DomainEvent.id == changed).values(dispatched_at=None))
    assert await dispatch_event(ctx, changed) == "dispatched"
    async with unit_of_work(create_session_factory(db_engine)) as db:
        event = await db.get(DomainEvent, changed)
        assert event is not None
        await create_deliveries(ctx, db, event)

    rows = await deliveries(db_engine)
    assert sorted((r.event_id, r.url) for r in rows) == [
        (changed, generic),
        (changed, status_url),
        (completed, generic),
    ]
    queued = sorted(j.decode() for j in await pool.zrange(Queue.DEFAULT.value, 0, -1))
    assert queued == sorted(f"webhook:{r.id}:0" for r in rows)


async def test_unreachable_receiver_records_the_error_and_retries(
    ctx: JobContext, db_engine: AsyncEngine
) -> None:
    url = f"http://127.0.0.1:{closed_port()}/hooks"
    business_id = await make_business(db_engine, webhook_url=url)
    assert await dispatch_event(ctx, await add_event(db_engine, business_id)) == "dispatched"
    [row] = await deliveries(db_engine)
    ctx["job_try"] = 1
    with pytest.raises(Retry):
        await deliver(ctx, row.id)
    [failed] = await deliveries(db_engine)
    assert (failed.status, failed.attempts, failed.last_status_code) == ("pending", 1, None)
    assert "ConnectError" in failed.last_error
    assert failed.next_attempt_at > datetime.now(UTC)


async def test_dns_failure_follows_the_worker_dns_policy(ctx: JobContext, db_engine: AsyncEngine) -> None:
    business_id = await make_business(db_engine, webhook_url="http://receiver.invalid/hooks")
    assert await dispatch_event(ctx, await add_event(db_engine, business_id)) == "dispatched"
    [row] = await deliveries(db_engine)
    [function] = [f for f in arq_functions(ALL_JOBS) if f.name == JOB_NAME]
    ctx.update(job_try=1, job_id=f"webhook:{row.id}:0")
    with pytest.raises(DnsRetry) as raised:
        await function.coroutine(ctx, row.id, 0)
    assert raised.value.defer_score == 30_000  # the DNS schedule, not the webhook backoff
    [failed] = await deliveries(db_engine)
    assert (failed.status, failed.attempts) == ("pending", 1)


async def test_an_older_round_stops_once_a_resend_round_took_over(
    ctx: JobContext, db_engine: AsyncEngine, receiver: MakeReceiver
) -> None:
    hooks: Receiver = await receiver([500])
    business_id = await make_business(db_engine, webhook_url=hooks.url)
    assert await dispatch_event(ctx, await add_event(db_engine, business_id)) == "dispatched"
    [row] = await deliveries(db_engine)
    outcome, _ = await run_round(ctx, row.id, tries=1)  # round 0, try 1 fails
    assert outcome == "retrying"
    ctx["job_try"] = 1
    assert await deliver(ctx, row.id, 1) == "delivered"  # the re-send round (since=1) delivers
    async with db_engine.begin() as conn:  # made pending again, as a re-send would
        await conn.execute(
            update(WebhookDelivery).where(WebhookDelivery.id == row.id).values(status="pending")
        )
    ctx["job_try"] = 2
    assert await deliver(ctx, row.id, 0) == "superseded"  # round 0's deferred try 2
    assert len(hooks.requests) == 2
    async with db_engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(WebhookDelivery)) == 1


async def test_through_real_workers_from_event_to_receiver(
    make_config: MakeConfig,
    run_group: RunGroup,
    pool: ArqRedis,
    db_engine: AsyncEngine,
    receiver: MakeReceiver,
) -> None:
    hooks: Receiver = await receiver()
    business_id = await make_business(db_engine, webhook_url=hooks.url)
    event_id = await add_event(db_engine, business_id, "appointment.cancelled")
    await enqueue(pool, "events.dispatch", event_id, job_id=f"event:{event_id}")

    async def delivered() -> bool:
        rows = await deliveries(db_engine)
        return bool(rows) and rows[0].status == "delivered"

    async with run_group(make_config(worker_queues="default")):
        await wait_until(delivered)
    [row] = await deliveries(db_engine)
    assert (row.attempts, row.last_status_code) == (1, 200)
    [request] = hooks.requests
    secret = await secret_of(db_engine, business_id)
    assert secret is not None
    assert verify(secret, request.headers[SIGNATURE_HEADER.lower()], request.body)
    assert request.headers[EVENT_HEADER.lower()] == "appointment.cancelled"


async def add_user(engine: AsyncEngine, business_id: int, email: str, role: str, active: bool = True) -> int:
    async with engine.begin() as conn:
        return int(
            (
                await conn.execute(
                    insert(User)
                    .values(business_id=business_id, email=email, role=role, is_active=active)
                    .returning(User.id)
                )
            ).scalar_one()
        )


async def staff_notices(engine: AsyncEngine) -> tuple[list[Any], list[Any]]:
    async with engine.connect() as conn:
        notes = list(await conn.execute(select(Notification.__table__).order_by(Notification.user_id)))
        emails = list(await conn.execute(select(OutboundEmail.__table__).order_by(OutboundEmail.id)))
    return notes, emails


async def test_a_dead_delivery_notifies_active_owners_and_admins_once(
    ctx: JobContext, db_engine: AsyncEngine, pool: ArqRedis, receiver: MakeReceiver
) -> None:
    hooks: Receiver = await receiver(default=500)
    business_id = await make_business(db_engine, webhook_url=f"{hooks.url}?token=s3cret")
    owner = await add_user(db_engine, business_id, "owner@dental.example", "owner")
    admin = await add_user(db_engine, business_id, "admin@dental.example", "admin")
    await add_user(db_engine, business_id, "agent@dental.example", "agent")
    await add_user(db_engine, business_id, "gone@dental.example", "admin", active=False)
    other = await make_business(db_engine)
    await add_user(db_engine, other, "owner@other.example", "owner")
    assert await dispatch_event(ctx, await add_event(db_engine, business_id)) == "dispatched"
    [row] = await deliveries(db_engine)

    outcome, _ = await run_round(ctx, row.id, tries=MAX_ATTEMPTS - 1)
    assert outcome == "retrying"
    assert await staff_notices(db_engine) == ([], [])  # nothing before the last try
    ctx["job_try"] = MAX_ATTEMPTS  # the round's last try
    assert await deliver(ctx, row.id) == "dead"

    notes, emails = await staff_notices(db_engine)
    assert [(n.user_id, n.business_id, n.kind, n.link, n.read_at) for n in notes] == [
        (owner, business_id, "webhook_failing", "/settings/webhooks", None),
        (admin, business_id, "webhook_failing", "/settings/webhooks", None),
    ]
    for note in notes:
        assert note.title == "A webhook could not be delivered"
        assert f"lead.created webhook #{row.id} to 127.0.0.1" in note.body
        assert "HTTP 500" in note.body
        assert "s3cret" not in note.body  # the host only, never the URL's token
    assert [(e.to_address, e.dedup_key, e.from_name, e.business_id) for e in emails] == [
        ("owner@dental.example", f"webhook-dead:{row.id}:user:{owner}", "Dental", business_id),
        ("admin@dental.example", f"webhook-dead:{row.id}:user:{admin}", "Dental", business_id),
    ]
    for email in emails:
        assert email.subject == "A webhook could not be delivered"
        assert notes[0].body in email.body_text
        assert "Open in ProSaaS: /settings/webhooks" in email.body_text
        assert email.body_html.startswith("<!DOCTYPE html>")
        assert "s3cret" not in email.body_text + email.body_html
    queued = {j.decode() for j in await pool.zrange(Queue.DEFAULT.value, 0, -1)}
    assert {f"email:{e.id}" for e in emails} <= queued

    # The job path again: a duplicate job, a re-send that dies again, a direct second notice.
    ctx["job_try"] = 1
    assert await deliver(ctx, row.id) == "skipped"
    async with db_engine.begin() as conn:
        await conn.execute(
            update(WebhookDelivery).where(WebhookDelivery.id == row.id).values(status="pending")
        )
    outcome, _ = await run_round(ctx, row.id, tries=MAX_ATTEMPTS, since=MAX_ATTEMPTS)
    assert outcome == "dead"
    async with unit_of_work(create_session_factory(db_engine)) as db:
        delivery = await db.get(WebhookDelivery, row.id)
        assert delivery is not None
        assert await notify_staff(db, ctx, business_id, dead_notice(delivery), f"webhook-dead:{row.id}") == 0
    assert await staff_notices(db_engine) == (notes, emails)
    assert {j.decode() for j in await pool.zrange(Queue.DEFAULT.value, 0, -1)} == queued
