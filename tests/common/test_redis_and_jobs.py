"""Redis client reconnects after its connection is killed; the arq pool enqueues on the named queue."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from prosaas_common.jobs import Queue, enqueue
from prosaas_common.redis import create_arq_pool, create_redis


async def test_client_reconnects_after_the_server_drops_it(redis_url: str) -> None:
    client = create_redis(redis_url)
    admin = Redis.from_url(redis_url)
    try:
        await client.set("probe", "1")
        killed = await admin.client_kill_filter(_type="normal", skipme=True)
        assert killed >= 1
        assert await client.get("probe") == "1"  # same client object, new connection
    finally:
        await client.aclose()
        await admin.aclose()


async def test_enqueue_lands_on_the_named_queue_and_dedups_by_job_id(redis_url: str) -> None:
    pool = await create_arq_pool(redis_url)
    try:
        first = await enqueue(pool, "send_email", 1, queue=Queue.HIGH, job_id="email:1", to="a@b.c")
        again = await enqueue(pool, "send_email", 1, queue=Queue.HIGH, job_id="email:1", to="a@b.c")
        default = await enqueue(pool, "cleanup")
        assert first is not None
        assert again is None
        assert default is not None
        assert await pool.zrange(Queue.HIGH.value, 0, -1) == [b"email:1"]
        assert await pool.zcard(Queue.DEFAULT.value) == 1
        assert await pool.zcard(Queue.LOW.value) == 0
    finally:
        await pool.aclose()


@pytest.mark.parametrize(
    ("name", "queue"), [("high", Queue.HIGH), (" Low ", Queue.LOW), ("arq:queue:default", Queue.DEFAULT)]
)
def test_queue_names(name: str, queue: Queue) -> None:
    assert Queue.from_name(name) is queue
    assert queue.short_name in ("high", "default", "low")


def test_unknown_queue_names_the_choices() -> None:
    with pytest.raises(ValueError, match="unknown queue 'urgent' \\(choose from high, default, low\\)"):
        Queue.from_name("urgent")
