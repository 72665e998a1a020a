"""The ``health`` command: is a worker of each asked queue alive, according to its own heartbeat?

A running arq worker rewrites ``{queue}:health-check`` (e.g. ``arq:queue:high:health-check``) every
``WORKER_HEALTH_INTERVAL`` seconds with a TTL of interval + 1 s and deletes it on a clean shutdown, so
the key exists only while a worker of that queue is polling. A Redis ping would say nothing about that.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from arq.constants import health_check_key_suffix
from redis.asyncio import Redis
from redis.exceptions import RedisError

from prosaas_common.jobs import Queue

DEFAULT_TIMEOUT_S = 2.0


def health_key(queue: Queue) -> str:
    return queue.value + health_check_key_suffix


@dataclass(frozen=True)
class QueueHealth:
    queue: Queue
    ok: bool
    detail: str
    ttl_ms: int | None = None

    def line(self) -> str:
        if self.ok:
            expires = ""
            if self.ttl_ms is not None and self.ttl_ms >= 0:
                expires = f" (expires in {self.ttl_ms / 1000:.1f}s)"
            return f"ok   {self.queue.short_name}: {health_key(self.queue)} = {self.detail}{expires}"
        return f"FAIL {self.queue.short_name}: {self.detail}"


@dataclass(frozen=True)
class HealthReport:
    queues: list[QueueHealth]
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.queues) and all(q.ok for q in self.queues)

    def lines(self) -> list[str]:
        if self.error is not None:
            return [f"FAIL {self.error}"]
        return [q.line() for q in self.queues]


def redact_url(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + host))


async def check_queues(
    redis_url: str, queues: Sequence[Queue], timeout: float = DEFAULT_TIMEOUT_S
) -> HealthReport:
    """Read every queue's health key once, with short socket timeouts and no retries."""
    client = Redis.from_url(
        redis_url, socket_connect_timeout=timeout, socket_timeout=timeout, retry_on_timeout=False
    )
    try:
        async with client.pipeline(transaction=False) as pipe:
            for queue in queues:
                pipe.get(health_key(queue))
                pipe.pttl(health_key(queue))
            replies = await pipe.execute()
    except (RedisError, OSError) as exc:
        reason = str(exc).strip() or type(exc).__name__
        return HealthReport([], error=f"Redis unreachable at {redact_url(redis_url)}: {reason}")
    finally:
        await client.aclose()
    results = []
    for index, queue in enumerate(queues):
        value, ttl = replies[2 * index], replies[2 * index + 1]
        if value is None:
            detail = f"no {health_key(queue)} — no worker of this queue reported within its health interval"
            results.append(QueueHealth(queue, ok=False, detail=detail))
        else:
            text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
            results.append(QueueHealth(queue, ok=True, detail=text, ttl_ms=int(ttl)))
    return HealthReport(results)
