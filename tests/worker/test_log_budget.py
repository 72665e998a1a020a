"""The log budget of an idle stack: at LOG_LEVEL=INFO the worker and the scheduler write their startup
lines and then nothing, however often the scheduled jobs run. Every real schedule runs here once a second
(``FAST_SCHEDULES``), so an idle tick of any of them that wrote an INFO line would show within seconds;
none does, which keeps an idle worker and scheduler within 2 INFO lines per hour (there are none at all).
Work that is done is a milestone: one reminders tick that sends reminders writes exactly one INFO line."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from arq.connections import ArqRedis
from redis.asyncio import Redis
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from prosaas_common.models import Business, Reminder, User
from tests.support import closed_port, wait_until
from tests.worker.stack import (
    FAST_SCHEDULES,
    at_least,
    index_after,
    records,
    results_by_schedule,
    running_stack,
    stop,
)

RUNS = 3  # finished runs of every schedule before the output is judged
# Configured as deployed: an SMS provider is set (nothing is due, so it is never called). Without one,
# messages.send_due says so once per process at WARNING, which is a configuration notice, not idle noise.
DEPLOYED = {
    "twilio_account_sid": "ACtest",
    "twilio_auth_token": "test-token",
    "twilio_api_base_url": f"http://127.0.0.1:{closed_port()}",
}


async def add_due_reminders(engine: AsyncEngine, count: int) -> list[int]:
    async with engine.begin() as conn:
        business_id = (
            await conn.execute(insert(Business).values(name="Dental").returning(Business.id))
        ).scalar_one()
        user_id = (
            await conn.execute(
                insert(User)
                .values(business_id=business_id, email="a@dental.example", role="agent")
                .returning(User.id)
            )
        ).scalar_one()
        due = datetime.now(UTC) - timedelta(minutes=1)
        rows = [
            {"business_id": business_id, "assignee_user_id": user_id, "note": f"call {i}", "due_at": due}
            for i in range(count)
        ]
        return list((await conn.execute(insert(Reminder).values(rows).returning(Reminder.id))).scalars())


async def test_idle_worker_and_scheduler_write_nothing_at_info_after_startup(
    redis_url: str, database_url: str, db_engine: AsyncEngine, redis: Redis, pool: ArqRedis
) -> None:
    assert {s.every for s in FAST_SCHEDULES} == {timedelta(seconds=1)}
    with running_stack(redis_url, database_url, **DEPLOYED) as (worker, scheduler):
        await worker.wait_for_event("worker.started", timeout=30)
        await scheduler.wait_for_event("scheduler.leader_acquired", timeout=30)

        async def every_job_ran(times: int) -> bool:
            counts = await results_by_schedule(redis, FAST_SCHEDULES)
            return all(n >= times for n in counts.values())

        await wait_until(lambda: every_job_ran(RUNS), timeout=60, interval=0.2)
        worker_idle = index_after(worker, "worker.started")
        scheduler_idle = index_after(scheduler, "scheduler.leader_acquired")
        # the startup lines are the only INFO lines so far
        assert [r["event"] for r in at_least("info", records(worker))] == ["worker.started"], worker.text()
        assert [r["event"] for r in at_least("info", records(scheduler))] == [
            "scheduler.started",
            "scheduler.leader_acquired",
        ], scheduler.text()

        # one reminders tick that sends: exactly one INFO line, reminders.sent; other ticks stay silent
        reminder_ids = await add_due_reminders(db_engine, 3)
        before = await results_by_schedule(redis, FAST_SCHEDULES)

        async def all_sent() -> bool:
            async with db_engine.connect() as conn:
                statuses = set((await conn.execute(select(Reminder.status))).scalars())
            return statuses == {"sent"}

        await wait_until(all_sent, timeout=30, interval=0.1)
        await wait_until(lambda: every_job_ran_since(redis, before, RUNS), timeout=60, interval=0.2)
        worker_lines = len(worker.lines)
        scheduler_lines = len(scheduler.lines)
        assert worker.proc.poll() is None
        assert scheduler.proc.poll() is None

        # every scheduled run succeeded (an idle tick that failed would be no proof of silence)
        scheduled = [r for r in await pool.all_job_results() if r.job_id and r.job_id.startswith("schedule:")]
        assert {r.function for r in scheduled} == {s.job for s in FAST_SCHEDULES}
        assert [r.job_id for r in scheduled if not r.success] == []

        assert await stop(worker) == 0
        assert await stop(scheduler) == 0

    busy = at_least("info", records(worker, worker_idle)[: worker_lines - worker_idle])
    assert [(r["event"], r.get("count")) for r in busy] == [("reminders.sent", len(reminder_ids))], (
        worker.text()
    )
    assert at_least("info", records(scheduler, scheduler_idle)[: scheduler_lines - scheduler_idle]) == []
    # and the stop is two lines each
    stopping = [r["event"] for r in at_least("info", records(worker, worker_lines))]
    assert stopping == ["worker.stopping", "worker.stopped"]
    stopping = [r["event"] for r in at_least("info", records(scheduler, scheduler_lines))]
    assert stopping == ["scheduler.leader_released", "scheduler.stopped"]


async def every_job_ran_since(redis: Redis, before: dict[str, int], times: int) -> bool:
    counts = await results_by_schedule(redis, FAST_SCHEDULES)
    return all(counts[name] >= before[name] + times for name in before)
