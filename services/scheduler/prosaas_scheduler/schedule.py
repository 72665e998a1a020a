"""Declarative schedules and the slot maths behind them.

A *slot* is an instant at which a schedule is due, always a whole second in UTC. Interval schedules
are aligned to the Unix epoch (every 5 min → :00, :05, …, whatever the process start time), so every
instance and every restart agrees on the same slots. Cron schedules are evaluated by cronsim in the
schedule's own timezone: on a spring-forward day a run inside the skipped hour happens once at the first
valid minute after it, on a fall-back day a fixed-time run happens once (the first occurrence), and
``*``-minute expressions keep running in real time through the repeated hour (Debian cron behaviour).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import islice
from types import MappingProxyType
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from prosaas_common.jobs import Queue

OnMissed = Literal["run_once", "run_all"]
ON_MISSED_CHOICES: tuple[OnMissed, ...] = ("run_once", "run_all")

# Names end up in Redis keys and arq job ids (``schedule:{name}:{slot}``), so no ':' or spaces.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
# Keyword arguments the scheduler passes itself, or that ``prosaas_common.jobs.enqueue`` would take
# as its own parameters instead of handing them to the job.
RESERVED_KWARGS = frozenset(
    {"scheduled_for", "pool", "function", "queue", "job_id", "defer_until", "defer_by"}
)


def _as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment.isoformat()}: pass a timezone-aware datetime")
    return moment.astimezone(UTC)


def to_epoch(moment: datetime) -> int:
    """Whole seconds since the epoch (slots never carry fractions)."""
    return math.floor(_as_utc(moment).timestamp())


def from_epoch(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


@dataclass(frozen=True)
class Schedule:
    """One periodic job: enqueue ``job`` on ``queue`` at every slot of ``every`` or ``cron``.

    ``timezone`` applies to cron expressions only; intervals are aligned to the epoch. ``on_missed``
    says what happens when several slots became due since the last run (scheduler down, late tick):
    ``run_once`` enqueues only the latest of them, ``run_all`` enqueues each one, oldest first.
    The job receives ``scheduled_for=<slot ISO 8601, UTC>`` plus ``kwargs``.
    """

    name: str
    job: str
    queue: Queue
    every: timedelta | None = None
    cron: str | None = None
    timezone: str = "UTC"
    kwargs: Mapping[str, Any] = field(default_factory=dict, hash=False)
    on_missed: OnMissed = "run_once"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not NAME_PATTERN.match(self.name):
            raise ValueError(
                f"schedule name {self.name!r}: use 1-100 letters, digits, '_', '.' or '-' (no ':' or spaces)"
            )
        if not isinstance(self.job, str) or not self.job.strip():
            raise ValueError(f"schedule {self.name!r}: job must be a non-empty function name")
        if not isinstance(self.queue, Queue):
            raise ValueError(f"schedule {self.name!r}: queue must be a prosaas_common.jobs.Queue")
        if (self.every is None) == (self.cron is None):
            raise ValueError(f"schedule {self.name!r}: give exactly one of every= or cron=")
        if self.every is not None:
            self._check_every(self.every)
        try:
            zone = ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            raise ValueError(f"schedule {self.name!r}: unknown timezone {self.timezone!r}") from None
        if self.cron is not None:
            try:
                CronSim(self.cron, datetime.now(zone))
            except (CronSimError, ValueError, TypeError, AttributeError) as exc:
                raise ValueError(
                    f"schedule {self.name!r}: invalid cron expression {self.cron!r}: {exc}"
                ) from None
        if self.on_missed not in ON_MISSED_CHOICES:
            raise ValueError(
                f"schedule {self.name!r}: on_missed must be one of {', '.join(ON_MISSED_CHOICES)}"
            )
        self._check_kwargs(self.kwargs)
        # A read-only copy: a frozen schedule must not change through a mapping the caller still holds.
        object.__setattr__(self, "kwargs", MappingProxyType(dict(self.kwargs)))

    def _check_every(self, every: timedelta) -> None:
        if not isinstance(every, timedelta):
            raise ValueError(f"schedule {self.name!r}: every must be a timedelta")
        if every <= timedelta(0):
            raise ValueError(f"schedule {self.name!r}: every must be greater than zero")
        if every.microseconds:
            raise ValueError(f"schedule {self.name!r}: every must be a whole number of seconds")

    def _check_kwargs(self, kwargs: Mapping[str, Any]) -> None:
        for key in kwargs:
            if not isinstance(key, str) or not key.isidentifier():
                raise ValueError(f"schedule {self.name!r}: kwargs key {key!r} is not an identifier")
            if key.startswith("_") or key in RESERVED_KWARGS:
                raise ValueError(f"schedule {self.name!r}: kwargs key {key!r} is reserved")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def interval_seconds(self) -> int | None:
        return None if self.every is None else int(self.every.total_seconds())

    def describe(self) -> str:
        if self.every is not None:
            return f"every {self.every}"
        return f"cron {self.cron!r} ({self.timezone})"


def unique_schedules(schedules: Iterable[Schedule]) -> tuple[Schedule, ...]:
    """The schedules as a tuple; ValueError if one is not a Schedule or a name is used twice."""
    result: list[Schedule] = []
    seen: set[str] = set()
    for schedule in schedules:
        if not isinstance(schedule, Schedule):
            raise ValueError(f"not a Schedule: {schedule!r}")
        if schedule.name in seen:
            raise ValueError(f"duplicate schedule name {schedule.name!r}")
        seen.add(schedule.name)
        result.append(schedule)
    return tuple(result)


# Slot maths --------------------------------------------------------------------------------------


def iter_slots(schedule: Schedule, after: datetime) -> Iterator[datetime]:
    """Slots strictly after ``after``, ascending, as UTC datetimes (endless for most schedules)."""
    start = to_epoch(after)  # slots are whole seconds: "> after" == "> floor(after)"
    step = schedule.interval_seconds
    if step is not None:
        slot = (start // step + 1) * step
        while True:
            yield from_epoch(slot)
            slot += step
    assert schedule.cron is not None
    previous = start
    zone = schedule.zone
    for moment in CronSim(schedule.cron, from_epoch(start).astimezone(zone)):
        epoch = to_epoch(moment)
        # cronsim's Debian-style DST fix-up works on local wall time; from inside a repeated hour it
        # can return an instant we have already passed. Slots must strictly increase.
        if epoch > previous:
            previous = epoch
            yield from_epoch(epoch)


def latest_slot(schedule: Schedule, at: datetime) -> datetime | None:
    """The most recent slot at or before ``at`` (None if there is none within cronsim's 50 years)."""
    end = to_epoch(at)
    step = schedule.interval_seconds
    if step is not None:
        return from_epoch(end // step * step)
    assert schedule.cron is not None
    # cronsim in reverse yields instants strictly before its start (whole seconds), so start one
    # second after ``at`` to include a slot exactly at ``at``.
    start = from_epoch(end + 1).astimezone(schedule.zone)
    candidate: datetime | None = None
    for moment in CronSim(schedule.cron, start, reverse=True):
        if to_epoch(moment) <= end:
            candidate = from_epoch(to_epoch(moment))
            break
    if candidate is None:
        return None
    # Reverse iteration works on wall time: from inside a repeated (fall-back) hour it can miss a slot
    # of the first pass. The forward iteration is exact, so walk forward from the candidate.
    for slot in _take_while_le(iter_slots(schedule, candidate), end):
        candidate = slot
    return candidate


def due_slots(
    schedule: Schedule, after: datetime, until: datetime, limit: int | None = None
) -> list[datetime]:
    """Slots in ``(after, until]``, oldest first, at most ``limit`` of them."""
    bounded = _take_while_le(iter_slots(schedule, after), to_epoch(until))
    return list(bounded if limit is None else islice(bounded, limit))


def count_due(schedule: Schedule, after: datetime, until: datetime, limit: int) -> int:
    """How many slots fall in ``(after, until]``, counting at most ``limit`` for cron schedules."""
    step = schedule.interval_seconds
    if step is not None:
        return max(0, to_epoch(until) // step - to_epoch(after) // step)
    return sum(1 for _ in islice(_take_while_le(iter_slots(schedule, after), to_epoch(until)), limit))


def _take_while_le(slots: Iterator[datetime], end: int) -> Iterator[datetime]:
    for slot in slots:
        if to_epoch(slot) > end:
            return
        yield slot
