"""Fixtures for messages to leads: a local Twilio Messaging API in the test's loop, a business with a
sending number and a lead, and helpers that run the events and the dispatcher the way the worker does."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from arq.connections import ArqRedis
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from prosaas_common.jobs import Queue
from prosaas_common.leads.writer import LeadWriter
from prosaas_common.models import (
    Business,
    BusinessPhoneNumber,
    DomainEvent,
    Lead,
    LeadStatus,
    MessageStatus,
    OutboundMessage,
)
from prosaas_common.provision import provision_business
from prosaas_common.settings import build_settings
from prosaas_worker.context import JobContext, WorkerResources
from prosaas_worker.jobs import events, messages
from prosaas_worker.settings import WorkerConfig
from tests.fakes.twilio_messages import FakeState, build_app
from tests.support import serving

ACCOUNT_SID = "AC" + "1" * 32
AUTH_TOKEN = "fake-twilio-token"
SENDING_NUMBER = "+14155550000"


@dataclass
class FakeTwilio:
    state: FakeState
    base_url: str

    def bodies(self) -> list[str]:
        return [m["body"] for m in self.state.messages]


@pytest.fixture
async def twilio() -> AsyncIterator[FakeTwilio]:
    state = FakeState(ACCOUNT_SID, AUTH_TOKEN)
    async with serving(build_app(state)) as base_url:
        yield FakeTwilio(state, base_url)


def worker_config(
    database_url: str, redis_url: str, twilio_url: str | None, **overrides: Any
) -> WorkerConfig:
    values: dict[str, Any] = {"app_env": "test", "database_url": database_url, "redis_url": redis_url}
    if twilio_url is not None:
        values |= {
            "twilio_api_base_url": twilio_url,
            "twilio_account_sid": ACCOUNT_SID,
            "twilio_auth_token": AUTH_TOKEN,
        }
    return build_settings(WorkerConfig, **(values | overrides))


@dataclass
class Worker:
    """A job context like the worker's, to run jobs and event handlers in the test."""

    resources: WorkerResources
    pool: ArqRedis

    @property
    def session_factory(self) -> async_sessionmaker[AsyncSession]:
        return self.resources.session_factory

    def ctx(self) -> JobContext:
        ctx = self.resources.job_context(Queue.DEFAULT)
        ctx.update(job_id="test", job_try=1, redis=self.pool)
        return ctx

    async def send_due(self) -> int:
        return await messages.send_due(self.ctx(), scheduled_for="2026-11-23T12:00:00+00:00")

    async def dispatch_events(self) -> int:
        """Run ``events.dispatch`` for every event not dispatched yet (oldest first), as the worker would."""
        async with self.session_factory() as db:
            ids = list(
                await db.scalars(
                    select(DomainEvent.id).where(DomainEvent.dispatched_at.is_(None)).order_by(DomainEvent.id)
                )
            )
        for event_id in ids:
            await events.dispatch_event(self.ctx(), event_id)
        return len(ids)

    async def pool_of(self) -> ArqRedis:
        return self.pool


MakeWorker = Callable[..., Worker]


@pytest.fixture
async def make_worker(
    database_url: str, redis_url: str, pool: ArqRedis, db_engine: AsyncEngine
) -> AsyncIterator[MakeWorker]:
    created: list[WorkerResources] = []

    def make(twilio_url: str | None = None, **overrides: Any) -> Worker:
        resources = WorkerResources.create(worker_config(database_url, redis_url, twilio_url, **overrides))
        created.append(resources)
        return Worker(resources, pool)

    yield make
    for resources in created:
        await resources.dispose()


@dataclass(frozen=True)
class Shop:
    business_id: int
    statuses: dict[str, int]  # status key → id


async def make_shop(
    worker: Worker, *, name: str = "Bright Dental", timezone: str = "Europe/London", number: bool = True
) -> Shop:
    async with worker.session_factory.begin() as db:
        business = Business(name=name, timezone=timezone, default_region="GB")
        db.add(business)
        await db.flush()
        await provision_business(db, business)
        if number:
            db.add(BusinessPhoneNumber(business_id=business.id, e164=SENDING_NUMBER, label="Main"))
        rows = await db.execute(
            select(LeadStatus.key, LeadStatus.id).where(LeadStatus.business_id == business.id)
        )
        return Shop(business.id, {key: status_id for key, status_id in rows.all()})


async def make_lead(worker: Worker, shop: Shop, **values: Any) -> int:
    async with worker.session_factory.begin() as db:
        writer = LeadWriter(db, shop.business_id, actor_user_id=None, via="api", pool=worker.pool_of)
        lead, _ = await writer.upsert(
            {"first_name": "Ada", "last_name": "Lovelace", "phone": "+447700900123"} | values
        )
        return lead.id


async def move_lead(worker: Worker, shop: Shop, lead_id: int, status_key: str) -> None:
    async with worker.session_factory.begin() as db:
        writer = LeadWriter(db, shop.business_id, actor_user_id=None, via="api", pool=worker.pool_of)
        lead = await db.get(Lead, lead_id)
        assert lead is not None
        await writer.change_status(lead, shop.statuses[status_key])


async def add_messages(
    engine: AsyncEngine, shop: Shop, count: int, send_at: datetime, **values: Any
) -> list[int]:
    """``count`` one-off scheduled messages to distinct numbers (bodies ``msg 0`` …)."""
    rows = [
        {
            "business_id": shop.business_id,
            "dedup_key": f"test:{shop.business_id}:{i}:{send_at.timestamp()}",
            "to_number": f"+4477009{i:05d}",
            "from_number": SENDING_NUMBER,
            "body": f"msg {i}",
            "send_at": send_at,
        }
        | values
        for i in range(count)
    ]
    async with engine.begin() as conn:
        result = await conn.execute(insert(OutboundMessage).values(rows).returning(OutboundMessage.id))
        return sorted(result.scalars())


async def message_rows(engine: AsyncEngine, **where: Any) -> list[OutboundMessage]:
    async with async_sessionmaker(engine)() as db:
        query = select(OutboundMessage).order_by(OutboundMessage.send_at, OutboundMessage.id)
        for name, value in where.items():
            query = query.where(getattr(OutboundMessage, name) == value)
        return list(await db.scalars(query))


def statuses(rows: list[OutboundMessage]) -> list[str]:
    return [row.status for row in rows]


SCHEDULED = MessageStatus.SCHEDULED.value
