"""Redis clients: one general client per process and the arq pool for enqueueing jobs."""

from __future__ import annotations

from arq.connections import ArqRedis, RedisSettings, create_pool
from redis.asyncio import Redis
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from prosaas_common.jobs import Queue


def create_redis(url: str, *, decode_responses: bool = True) -> Redis:
    """A client that reconnects with exponential backoff (capped at 2 s) on connection errors."""
    client: Redis = Redis.from_url(
        url,
        decode_responses=decode_responses,
        retry=Retry(ExponentialBackoff(cap=2.0, base=0.05), retries=3),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        socket_connect_timeout=2.0,
        socket_timeout=5.0,
        socket_keepalive=True,
        health_check_interval=30,
    )
    return client


def arq_redis_settings(url: str) -> RedisSettings:
    settings = RedisSettings.from_dsn(url)
    settings.conn_timeout = 2
    settings.conn_retries = 5
    settings.conn_retry_delay = 1
    settings.retry_on_timeout = True
    return settings


async def create_arq_pool(url: str, default_queue: Queue = Queue.DEFAULT) -> ArqRedis:
    """Pool used to enqueue jobs; jobs land on ``default_queue`` unless a queue is given."""
    return await create_pool(arq_redis_settings(url), default_queue_name=default_queue.value)
