"""Single-leader election with a Redis lock.

The lock is one key holding ``<instance_id>:<random token>`` with a TTL. It is taken with SET NX PX,
renewed by its holder every TTL/3 with a compare-and-pexpire, and released with a compare-and-delete,
so an instance can never extend or delete a lock it no longer holds.

Locally the holder considers itself leader only until ``sent + TTL``, where ``sent`` is when it sent
the last successful acquire/renew. Redis starts the TTL when it receives the command, which is later,
so the local view always ends before the key can expire and a standby can take over: two instances
never both believe they lead because of timing alone. A failed or unanswered renewal drops leadership
at once.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from prosaas_common.logging import RepeatedFailureLog, get_logger
from prosaas_scheduler.keys import LEADER_KEY

log = get_logger("prosaas.scheduler.leader")

# Take the lock if free; if it already holds our token (a renewal whose reply was lost), keep it.
_ACQUIRE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

REDIS_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)


class LeaderLock:
    """The leader lock as seen by one instance. ``held`` is the local, time-bounded view."""

    def __init__(
        self,
        redis: Redis,
        *,
        instance_id: str,
        ttl: float,
        key: str = LEADER_KEY,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl <= 0:
            raise ValueError("ttl must be positive")
        self.key = key
        self.ttl = ttl
        self.instance_id = instance_id
        self.token = f"{instance_id}:{secrets.token_hex(8)}"
        self._redis = redis
        self._monotonic = monotonic
        self._valid_until: float | None = None
        self._acquire = redis.register_script(_ACQUIRE)
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)

    @property
    def ttl_ms(self) -> int:
        return max(1, round(self.ttl * 1000))

    @property
    def held(self) -> bool:
        """Whether this instance may act as leader right now."""
        return self._valid_until is not None and self._monotonic() < self._valid_until

    def remaining(self) -> float:
        """Seconds of leadership left in the local view (0 when not held)."""
        if self._valid_until is None:
            return 0.0
        return max(0.0, self._valid_until - self._monotonic())

    def drop(self) -> None:
        """Stop acting as leader without touching Redis (the key expires by itself)."""
        self._valid_until = None

    async def acquire(self) -> bool:
        """Take the lock if it is free (or already ours); True if we now hold it."""
        sent = self._monotonic()
        try:
            ok = await self._acquire(keys=[self.key], args=[self.token, self.ttl_ms])
        except BaseException:
            self.drop()
            raise
        taken = int(ok) == 1
        self._valid_until = sent + self.ttl if taken else None
        return taken

    async def renew(self) -> bool:
        """Extend the TTL if the lock is still ours; on False or an error leadership is dropped."""
        sent = self._monotonic()
        try:
            ok = await self._renew(keys=[self.key], args=[self.token, self.ttl_ms])
        except BaseException:
            self.drop()
            raise
        if int(ok) == 1 and self._valid_until is not None:
            self._valid_until = sent + self.ttl
            return True
        self.drop()
        return False

    async def release(self) -> bool:
        """Delete the lock if it is still ours, so a standby can take over at once."""
        self.drop()
        return bool(await self._release(keys=[self.key], args=[self.token]))


async def current_leader(redis: Redis, key: str = LEADER_KEY) -> str | None:
    """Instance id of the current lock holder, or None when nobody leads."""
    value = await redis.get(key)
    if value is None:
        return None
    text = value.decode() if isinstance(value, bytes) else str(value)
    return text.rsplit(":", 1)[0]


class LeaderElection:
    """Keeps trying to take the lock while standby and renews it every TTL/3 while leader.

    Role changes are logged at INFO (``scheduler.leader_acquired`` / ``scheduler.leader_lost``); Redis
    errors go through ``failure_log`` (first at WARNING, then quiet) and never end the loop.
    """

    def __init__(
        self,
        lock: LeaderLock,
        *,
        retry_interval: float,
        failure_log: RepeatedFailureLog | None = None,
    ) -> None:
        self.lock = lock
        self.retry_interval = retry_interval
        self._failures = failure_log or RepeatedFailureLog(log)
        self._was_leader = False
        self.changed = asyncio.Event()  # set on every role change; the runner ticks at once

    @property
    def renew_interval(self) -> float:
        return self.lock.ttl / 3

    async def step(self) -> bool:
        """One acquire-or-renew attempt; returns whether we lead afterwards."""
        lock = self.lock
        try:
            if lock.held:
                # Never wait on a renewal for longer than the leadership it is meant to extend.
                async with asyncio.timeout(max(lock.remaining(), 0.001)):
                    await lock.renew()
            else:
                async with asyncio.timeout(max(self.retry_interval, self.renew_interval, 0.5)):
                    await lock.acquire()
        except REDIS_ERRORS as exc:
            lock.drop()
            self._failures.failure(
                "redis:leader",
                "scheduler.redis_unavailable",
                operation="leader_lock",
                error=describe_error(exc),
            )
            reason = f"redis error: {describe_error(exc)}"
        else:
            self._failures.recovered("redis:leader", "scheduler.redis_recovered", operation="leader_lock")
            reason = "lock expired or taken by another instance"
        self._note_role(reason)
        return lock.held

    def _note_role(self, reason: str) -> None:
        leader = self.lock.held
        if leader == self._was_leader:
            return
        self._was_leader = leader
        self.changed.set()
        if leader:
            log.info("scheduler.leader_acquired", instance_id=self.lock.instance_id, ttl_s=self.lock.ttl)
        else:
            log.info("scheduler.leader_lost", instance_id=self.lock.instance_id, reason=reason)

    def next_wait(self) -> float:
        """Seconds until the next step: a renewal at TTL/3 while leading, else the retry interval."""
        if self.lock.held:
            return min(self.renew_interval, self.lock.remaining())
        return self.retry_interval

    async def run(self, stop: asyncio.Event) -> None:
        """Loop until ``stop`` is set. Does not release the lock; the caller decides that."""
        while not stop.is_set():
            try:
                await self.step()
            except Exception as exc:  # a bug must not leave a leader that never renews: drop and retry
                self.lock.drop()
                self._note_role(f"unexpected error: {describe_error(exc)}")
                self._failures.failure("election", "scheduler.election_failed", error=describe_error(exc))
            await wait_or_stop(stop, self.next_wait())

    async def release(self) -> None:
        """Give the lock up (graceful stop) and log the role change."""
        was_leader = self.lock.held
        try:
            released = await self.lock.release()
        except REDIS_ERRORS as exc:
            log.warning("scheduler.leader_release_failed", error=describe_error(exc))
            released = False
        if was_leader or released:
            log.info("scheduler.leader_released", instance_id=self.lock.instance_id)
        self._was_leader = False


async def wait_or_stop(stop: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds`` or until ``stop`` is set, whichever comes first."""
    if seconds <= 0 or stop.is_set():
        return
    try:
        async with asyncio.timeout(seconds):
            await stop.wait()
    except TimeoutError:
        pass


def describe_error(exc: BaseException) -> str:
    """Short one-line form of an error for log fields."""
    if isinstance(exc, TimeoutError) and not str(exc):
        return "timed out"
    return f"{type(exc).__name__}: {exc}"[:300]
