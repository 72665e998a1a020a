"""Scheduler fixtures: real Redis clients on the flushed test db and a Scheduler factory."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from arq.connections import ArqRedis
from redis.asyncio import Redis

from prosaas_scheduler.runner import Scheduler
from prosaas_scheduler.schedule import Schedule
from tests.scheduler.helpers import FakeClock, MakeScheduler


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2024, 3, 1, 0, 0, 10, tzinfo=UTC))


@pytest.fixture
def make_scheduler(redis: Redis, pool: ArqRedis, clock: FakeClock) -> MakeScheduler:
    """Schedulers on the test Redis; instance ids default to sched-1, sched-2, …"""
    counter = iter(range(1, 1000))

    def make(schedules: Sequence[Schedule], **options: Any) -> Scheduler:
        options.setdefault("instance_id", f"sched-{next(counter)}")
        options.setdefault("clock", clock)
        return Scheduler(redis, pool, schedules, **options)

    return make
