"""The scheduled sweep re-enqueues pending deliveries whose job was lost, and leaves the rest alone."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from arq.connections import ArqRedis
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from prosaas_common.jobs import Queue
from prosaas_common.models.webhook import WebhookDelivery
from prosaas_common.webhooks import delivery_job_id
from prosaas_worker.context import JobContext, WorkerResources
from prosaas_worker.jobs.webhooks import recover
from tests.worker.conftest import MakeConfig
from tests.worker.test_webhook_delivery import make_business


@pytest.fixture
async def ctx(make_config: MakeConfig, pool: ArqRedis) -> AsyncIterator[JobContext]:
    resources = WorkerResources.create(make_config())
    context = resources.job_context(Queue.DEFAULT)
    context.update(redis=pool, job_try=1)
    yield context
    await resources.dispose()


async def add_delivery(engine: AsyncEngine, business_id: int, **values: object) -> int:
    row = {"business_id": business_id, "event_type": "lead.created", "url": "http://127.0.0.1:9/hook",
           "payload": {}, **values}  # fmt: skip
    async with engine.begin() as conn:
        return int(
            (
                await conn.execute(insert(WebhookDelivery).values(**row).returning(WebhookDelivery.id))
            ).scalar_one()
        )


async def test_lost_deliveries_are_enqueued_again_once(
    ctx: JobContext, db_engine: AsyncEngine, pool: ArqRedis
) -> None:
    business_id = await make_business(db_engine)
    now = datetime.now(UTC)
    lost = await add_delivery(db_engine, business_id, attempts=2, next_attempt_at=now - timedelta(minutes=30))
    await add_delivery(
        db_engine, business_id, attempts=1, next_attempt_at=now + timedelta(minutes=5)
    )  # waiting
    await add_delivery(db_engine, business_id, status="delivered", next_attempt_at=now - timedelta(hours=1))
    await add_delivery(
        db_engine, business_id, status="dead", attempts=11, next_attempt_at=now - timedelta(hours=1)
    )

    assert await recover(ctx) == 1
    assert await recover(ctx) == 1  # still pending: found again, but arq keeps one job per round id
    queued = [job.job_id for job in await pool.queued_jobs(queue_name=Queue.DEFAULT.value)]
    assert queued == [delivery_job_id(lost, 2)]
