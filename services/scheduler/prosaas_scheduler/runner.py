"""The scheduler loop: while leader, enqueue every due slot of every schedule exactly once.

Per schedule, ``scheduler:last_run:{name}`` holds the epoch of the latest slot enqueued. A tick looks at
the slots in ``(last_run, now]``; it does not care how late or irregular ticks are, so a run is never
skipped because a tick missed "its" minute. A schedule seen for the first time is anchored at its most
recent slot ≤ now: its first run is the *next* slot, not a catch-up of everything since the epoch.

Each run is enqueued with the job id ``schedule:{name}:{slot_epoch}`` (arq ignores a second enqueue of
a live job id) and only then is last_run advanced, with a Lua set-if-greater so it never moves back.
last_run is re-read just before each enqueue, so an instance acting on a stale view skips a slot
another instance already did. A crash between enqueue and advance re-enqueues the same job id on the
next tick, which arq turns into a no-op while the job or its result is kept: delivery is at-least-once
(never a skipped slot), and jobs are idempotent by design.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from redis.asyncio import Redis

from prosaas_common.jobs import enqueue
from prosaas_common.logging import RepeatedFailureLog, get_logger
from prosaas_scheduler.keys import heartbeat_key, job_id, last_run_key
from prosaas_scheduler.leader import REDIS_ERRORS, LeaderElection, LeaderLock, describe_error
from prosaas_scheduler.schedule import (
    Schedule,
    count_due,
    due_slots,
    from_epoch,
    latest_slot,
    to_epoch,
    unique_schedules,
)

if TYPE_CHECKING:
    from arq.connections import ArqRedis

    from prosaas_scheduler.settings import SchedulerSettings

log = get_logger("prosaas.scheduler")

Clock = Callable[[], datetime]
# run_all: at most this many runs of one schedule per tick; the rest follow on the next ticks.
MAX_RUNS_PER_TICK = 100
# run_once: how many skipped cron slots are counted for the coalesced log line.
MAX_COUNTED = 1000

# Set last_run to ARGV[1] only if it is newer than the stored value; returns the value now stored.
_ADVANCE = """
local old = redis.call('GET', KEYS[1])
if (not old) or tonumber(ARGV[1]) > tonumber(old) then
  redis.call('SET', KEYS[1], ARGV[1])
  return ARGV[1]
end
return old
"""


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class EnqueuedRun:
    """One run a tick handed to arq; ``duplicate`` when arq already had that job id."""

    schedule: str
    slot: datetime
    job_id: str
    duplicate: bool = False


class Scheduler:
    """Leader-only enqueuer of periodic jobs. Drive it with :meth:`run`, or call :meth:`tick` in tests."""

    def __init__(
        self,
        redis: Redis,
        pool: ArqRedis,
        schedules: Sequence[Schedule],
        *,
        instance_id: str,
        leader_ttl: float = 15.0,
        tick_seconds: float = 1.0,
        heartbeat_ttl: float = 30.0,
        clock: Clock = utc_now,
        lock: LeaderLock | None = None,
    ) -> None:
        self.schedules = unique_schedules(schedules)
        self.instance_id = instance_id
        self.tick_seconds = tick_seconds
        self.heartbeat_ttl = heartbeat_ttl
        self.clock = clock
        self.lock = lock or LeaderLock(redis, instance_id=instance_id, ttl=leader_ttl)
        self._redis = redis
        self._pool = pool
        self._failures = RepeatedFailureLog(log)
        self.election = LeaderElection(
            self.lock, retry_interval=min(tick_seconds, self.lock.ttl / 3), failure_log=self._failures
        )
        self._advance = redis.register_script(_ADVANCE)

    @classmethod
    def from_settings(
        cls,
        settings: SchedulerSettings,
        redis: Redis,
        pool: ArqRedis,
        schedules: Sequence[Schedule],
        clock: Clock = utc_now,
    ) -> Scheduler:
        return cls(
            redis,
            pool,
            schedules,
            instance_id=settings.scheduler_instance_id,
            leader_ttl=settings.scheduler_leader_ttl,
            tick_seconds=settings.scheduler_tick_seconds,
            heartbeat_ttl=settings.scheduler_heartbeat_ttl,
            clock=clock,
        )

    @property
    def is_leader(self) -> bool:
        return self.lock.held

    # One tick -----------------------------------------------------------------------------------

    async def tick(self, now: datetime | None = None) -> list[EnqueuedRun]:
        """Enqueue what is due at ``now`` (default: the clock). Does nothing unless we hold the lock."""
        if not self.lock.held or not self.schedules:
            return []
        moment = now if now is not None else self.clock()
        if moment.tzinfo is None:
            raise ValueError("tick(now): now must be timezone-aware")
        keys = [last_run_key(s.name) for s in self.schedules]
        stored = await self._redis.mget(keys)
        runs: list[EnqueuedRun] = []
        for schedule, raw in zip(self.schedules, stored, strict=True):
            if not self.lock.held:  # lost leadership mid-tick: the new leader carries on
                break
            key = f"schedule:{schedule.name}"
            try:
                runs.extend(await self._tick_schedule(schedule, _parse_epoch(raw), moment))
            except REDIS_ERRORS:
                raise
            except Exception as exc:
                # One broken schedule (say, kwargs arq cannot serialise) must not hold up the others.
                self._failures.failure(
                    key,
                    "scheduler.schedule_failed",
                    schedule=schedule.name,
                    error=f"{type(exc).__name__}: {exc}",
                )
            else:
                self._failures.recovered(key, "scheduler.schedule_recovered", schedule=schedule.name)
        return runs

    async def _tick_schedule(self, schedule: Schedule, last: int | None, now: datetime) -> list[EnqueuedRun]:
        if last is None:
            anchor = latest_slot(schedule, now)
            stored = await self._advance_to(schedule, to_epoch(anchor if anchor is not None else now))
            log.debug(
                "scheduler.schedule_anchored", schedule=schedule.name, last_run=from_epoch(stored).isoformat()
            )
            return []
        after = from_epoch(last)
        if schedule.on_missed == "run_once":
            latest = latest_slot(schedule, now)
            if latest is None or latest <= after:
                return []
            due = [latest]
            missed = count_due(schedule, after, latest, MAX_COUNTED)
            if missed > 1:
                log.info(
                    "scheduler.runs_coalesced",
                    schedule=schedule.name,
                    due=missed,
                    due_capped=missed >= MAX_COUNTED and schedule.every is None,
                    since=after.isoformat(),
                    slot=latest.isoformat(),
                )
        else:
            due = due_slots(schedule, after, now, limit=MAX_RUNS_PER_TICK)
            backlog = count_due(schedule, after, now, MAX_RUNS_PER_TICK + 1)
            if backlog > len(due):
                log.info(
                    "scheduler.catching_up",
                    schedule=schedule.name,
                    enqueued=len(due),
                    since=after.isoformat(),
                )
        runs: list[EnqueuedRun] = []
        for slot in due:
            if not self.lock.held:
                break
            run = await self._enqueue(schedule, slot)
            if run is not None:
                runs.append(run)
        return runs

    async def _enqueue(self, schedule: Schedule, slot: datetime) -> EnqueuedRun | None:
        """Enqueue one slot unless last_run already reached it; then advance last_run to it."""
        epoch = to_epoch(slot)
        run_id = job_id(schedule.name, epoch)
        # Re-read last_run right before enqueueing: if another instance (a leader that has not yet
        # noticed it lost the lock) got here first since this tick began, the slot is done.
        current = _parse_epoch(await self._redis.get(last_run_key(schedule.name)))
        if current is not None and current >= epoch:
            log.debug("scheduler.run_already_enqueued", schedule=schedule.name, job_id=run_id)
            return None
        job = await enqueue(
            self._pool,
            schedule.job,
            queue=schedule.queue,
            job_id=run_id,
            scheduled_for=slot.isoformat(),
            **schedule.kwargs,
        )
        await self._advance_to(schedule, epoch)
        if job is None:
            # arq already holds this job id (a run enqueued just before a crash, or by a racing instance)
            log.debug("scheduler.run_duplicate", schedule=schedule.name, job_id=run_id)
        else:
            log.debug(
                "scheduler.run_enqueued",
                schedule=schedule.name,
                job=schedule.job,
                queue=schedule.queue.short_name,
                job_id=run_id,
                scheduled_for=slot.isoformat(),
            )
        return EnqueuedRun(schedule.name, slot, run_id, duplicate=job is None)

    async def _advance_to(self, schedule: Schedule, epoch: int) -> int:
        """Move last_run forward to ``epoch`` (never back); returns the value stored afterwards."""
        stored = await self._advance(keys=[last_run_key(schedule.name)], args=[epoch])
        parsed = _parse_epoch(stored)
        return epoch if parsed is None else parsed

    # The loop -----------------------------------------------------------------------------------

    async def heartbeat(self) -> None:
        """Say this instance is alive and which role it has; `health` reads this key."""
        value = json.dumps(
            {
                "instance_id": self.instance_id,
                "role": "leader" if self.lock.held else "standby",
                "at": utc_now().isoformat(),
                "pid": os.getpid(),
            }
        )
        await self._redis.set(
            heartbeat_key(self.instance_id), value, px=max(1, round(self.heartbeat_ttl * 1000))
        )

    async def run_once(self) -> None:
        """Heartbeat and, if leader, one tick; Redis errors are logged (quietly) and swallowed."""
        try:
            await self.heartbeat()
            await self.tick()
        except REDIS_ERRORS as exc:
            self._failures.failure(
                "redis:tick", "scheduler.redis_unavailable", operation="tick", error=describe_error(exc)
            )
            return
        except Exception as exc:  # a bug must not end the loop; it is logged (rate-limited) instead
            self._failures.failure(
                "tick", "scheduler.tick_failed", error=f"{type(exc).__name__}: {exc}", exc_info=True
            )
            return
        self._failures.recovered("redis:tick", "scheduler.redis_recovered", operation="tick")
        self._failures.recovered("tick", "scheduler.tick_recovered")

    async def run(self, stop: asyncio.Event) -> None:
        """Tick every ``tick_seconds`` until ``stop`` is set, then release the lock at once.

        Cancelling this coroutine is treated like a crash: the lock is *not* released and expires by
        its TTL (only a graceful stop through ``stop`` hands leadership over immediately).
        """
        log.info(
            "scheduler.started",
            instance_id=self.instance_id,
            schedules=[s.name for s in self.schedules],
            leader_ttl_s=self.lock.ttl,
            tick_s=self.tick_seconds,
        )
        election = asyncio.create_task(self.election.run(stop), name="scheduler-election")
        try:
            while not stop.is_set():
                self.election.changed.clear()
                await self.run_once()
                await self._wait_for_next_tick(stop)
        except asyncio.CancelledError:
            election.cancel()
            await asyncio.gather(election, return_exceptions=True)
            raise
        await election
        await self.election.release()
        with contextlib.suppress(*REDIS_ERRORS):  # it would expire by itself anyway
            await self._redis.delete(heartbeat_key(self.instance_id))
        log.info("scheduler.stopped", instance_id=self.instance_id)

    async def _wait_for_next_tick(self, stop: asyncio.Event) -> None:
        """Wait a tick, or less when stopping or when leadership changes (a new leader ticks at once)."""
        waiters = {asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self.election.changed.wait())}
        try:
            await asyncio.wait(waiters, timeout=self.tick_seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()


def _parse_epoch(raw: object) -> int | None:
    if raw is None:
        return None
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    try:
        return int(float(text))
    except ValueError:
        return None
