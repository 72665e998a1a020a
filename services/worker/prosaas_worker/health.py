"""The ``health`` command: is a worker of each asked queue alive, according to its own heartbeat?

Each arq worker rewrites ``{queue}:health-check:{instance}`` (e.g. ``arq:queue:high:health-check:web-1``)
every ``WORKER_HEALTH_INTERVAL`` seconds with a TTL of interval + 1 s and deletes it on a clean
shutdown, so the key exists only while that process's worker of that queue is polling. The key names the
instance (``WORKER_INSTANCE_ID``, the host name by default) so that with several worker containers on
one queue each health check sees its own worker, and one container's clean stop does not blank the
others. A Redis ping would say nothing about any of this.
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
ANY_INSTANCE = "*"


def health_key(queue: Queue, instance_id: str) -> str:
    """The health key of ``instance_id``'s worker of ``queue`` (``*`` as a pattern for any instance)."""
    return f"{queue.value}{health_check_key_suffix}:{instance_id}"


@dataclass(frozen=True)
class QueueHealth:
    queue: Queue
    ok: bool
    detail: str
    key: str
    ttl_ms: int | None = None

    def line(self) -> str:
        if self.ok:
            expires = ""
            if self.ttl_ms is not None and self.ttl_ms >= 0:
                expires = f" (expires in {self.ttl_ms / 1000:.1f}s)"
            return f"ok   {self.queue.short_name}: {self.key} = {self.detail}{expires}"
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


async def _fresh_key(client: Redis, queue: Queue, instance_id: str) -> str | None:
    """The key to report: this instance's, or with ``*`` the first live key of any instance."""
    pattern = health_key(queue, instance_id)
    if instance_id != ANY_INSTANCE:
        return pattern
    async for key in client.scan_iter(match=pattern, count=100):
        return key.decode() if isinstance(key, bytes) else str(key)
    return None


async def check_queues(
    redis_url: str, queues: Sequence[Queue], instance_id: str, timeout: float = DEFAULT_TIMEOUT_S
) -> HealthReport:
    """Read each queue's health key once (``instance_id="*"``: any instance), with short timeouts."""
    client = Redis.from_url(
        redis_url, socket_connect_timeout=timeout, socket_timeout=timeout, retry_on_timeout=False
    )
    results = []
    try:
        for queue in queues:
            key = await _fresh_key(client, queue, instance_id)
            async with client.pipeline(transaction=False) as pipe:
                pipe.get(key or health_key(queue, instance_id))
                pipe.pttl(key or health_key(queue, instance_id))
                value, ttl = await pipe.execute()
            shown = key or health_key(queue, instance_id)
            if value is None:
                detail = f"no {shown} — no worker of this queue reported within its health interval"
                results.append(QueueHealth(queue, ok=False, detail=detail, key=shown))
            else:
                text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
                results.append(QueueHealth(queue, ok=True, detail=text, key=shown, ttl_ms=int(ttl)))
    except (RedisError, OSError) as exc:
        reason = str(exc).strip() or type(exc).__name__
        return HealthReport([], error=f"Redis unreachable at {redact_url(redis_url)}: {reason}")
    finally:
        await client.aclose()
    return HealthReport(results)
