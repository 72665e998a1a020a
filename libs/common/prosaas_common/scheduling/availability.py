"""The availability engine: which slots of a calendar are free.

:func:`free_slots` is pure (no database, no clock): the api's availability endpoint and the phone
agent's booking tool both call it with the same inputs and get the same answer.

Opening hours are wall-clock times in the business's IANA time zone. Each candidate slot is built as a
local time and converted to UTC with :mod:`zoneinfo`, so a 09:00 opening is 09:00 local on both sides of
a DST change. A local time that does not exist (the hour skipped in spring) yields no slot; an ambiguous
one (the hour repeated in autumn) is read as its first occurrence (``fold=0``).
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from prosaas_common.models import WEEKDAYS, Appointment, AppointmentStatus, Business, Calendar
from prosaas_common.scheduling.booking import calendar_of

MINUTES_PER_DAY = 24 * 60
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")

# An opening interval as minutes after local midnight: [start, end), end may be 1440 (24:00).
Interval = tuple[int, int]


class InvalidRules(ValueError):
    """Opening hours or closed dates that cannot be read; ``field`` names the offending part."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class CalendarRules:
    """What the engine needs to know of a calendar."""

    slot_minutes: int
    buffer_minutes: int
    booking_window_days: int
    min_notice_minutes: int
    weekly_hours: Mapping[str, Sequence[Interval]]  # "mon".."sun" → sorted, disjoint intervals
    excluded_dates: frozenset[date]

    @classmethod
    def of(cls, calendar: Calendar) -> CalendarRules:
        return cls(
            slot_minutes=calendar.slot_minutes,
            buffer_minutes=calendar.buffer_minutes,
            booking_window_days=calendar.booking_window_days,
            min_notice_minutes=calendar.min_notice_minutes,
            weekly_hours=parse_weekly_hours(calendar.weekly_hours),
            excluded_dates=parse_excluded_dates(calendar.excluded_dates),
        )


@dataclass(frozen=True)
class Slot:
    starts_at: datetime  # UTC
    ends_at: datetime  # UTC


def clock_minutes(value: object) -> int:
    """ "HH:MM" (00:00-23:59, or 24:00 for the end of the day) as minutes after midnight."""
    if not isinstance(value, str) or not _CLOCK.match(value):
        raise ValueError(f"{value!r} is not a time of day as HH:MM")
    hours, minutes = value.split(":")
    return int(hours) * 60 + int(minutes)


def parse_weekly_hours(raw: object) -> dict[str, tuple[Interval, ...]]:
    """``{"mon": [["09:00", "12:00"], ["13:00", "17:00"]], ...}`` as sorted intervals per weekday.

    Keys must be weekdays (missing ones are closed); each pair needs start < end; a day's intervals
    must not overlap. Raises :class:`InvalidRules` naming the weekday.
    """
    if not isinstance(raw, Mapping):
        raise InvalidRules("weekly_hours", "an object with the keys mon..sun")
    unknown = sorted(str(key) for key in raw if key not in WEEKDAYS)
    if unknown:
        raise InvalidRules("weekly_hours", f"unknown weekday {unknown[0]!r}; use {', '.join(WEEKDAYS)}")
    hours: dict[str, tuple[Interval, ...]] = {}
    for day in WEEKDAYS:
        pairs = raw.get(day) or []
        if not isinstance(pairs, list) or len(pairs) > 24:
            raise InvalidRules(day, "a list of at most 24 [start, end] pairs")
        intervals: list[Interval] = []
        for pair in pairs:
            if not isinstance(pair, list | tuple) or len(pair) != 2:
                raise InvalidRules(day, 'each opening is a pair ["HH:MM", "HH:MM"]')
            try:
                start, end = clock_minutes(pair[0]), clock_minutes(pair[1])
            except ValueError as exc:
                raise InvalidRules(day, str(exc)) from None
            if start >= end:
                raise InvalidRules(day, f"{pair[0]}-{pair[1]}: the start must be before the end")
            intervals.append((start, end))
        intervals.sort()
        for (_, end), (start, _) in itertools.pairwise(intervals):
            if start < end:
                raise InvalidRules(day, "openings of one day must not overlap")
        hours[day] = tuple(intervals)
    return hours


def format_weekly_hours(hours: Mapping[str, Sequence[Interval]]) -> dict[str, list[list[str]]]:
    """The stored (JSON) shape of parsed opening hours, every weekday present."""

    def clock(minutes: int) -> str:
        return f"{minutes // 60:02d}:{minutes % 60:02d}"

    return {day: [[clock(s), clock(e)] for s, e in hours.get(day, ())] for day in WEEKDAYS}


def parse_excluded_dates(raw: object) -> frozenset[date]:
    if not isinstance(raw, list) or len(raw) > 1000:
        raise InvalidRules("excluded_dates", "a list of at most 1000 ISO dates")
    dates: set[date] = set()
    for item in raw:
        try:
            if not isinstance(item, str) or len(item) != 10:
                raise ValueError
            dates.add(date.fromisoformat(item))
        except ValueError:
            raise InvalidRules("excluded_dates", f"{item!r} is not an ISO date (YYYY-MM-DD)") from None
    return frozenset(dates)


def local_instant(day: date, minutes: int, tz: ZoneInfo) -> datetime | None:
    """The UTC instant of ``minutes`` after local midnight of ``day``; None when DST skips it.

    Ambiguous times (repeated in autumn) resolve to their first occurrence (fold=0).
    """
    naive = datetime.combine(day, time()) + timedelta(minutes=minutes)
    aware = naive.replace(tzinfo=tz, fold=0)
    instant = aware.astimezone(UTC)
    if instant.astimezone(tz).replace(tzinfo=None) != naive:
        return None  # in the gap of a spring-forward change
    return instant


def _require_aware(**values: datetime) -> None:
    for name, value in values.items():
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{name} must be timezone-aware")


def _blocked(
    busy: Iterable[tuple[datetime, datetime]], buffer: timedelta
) -> tuple[list[datetime], list[datetime]]:
    """Busy intervals widened by ``buffer`` on both sides, merged: (starts, ends), both sorted."""
    starts: list[datetime] = []
    ends: list[datetime] = []
    for begin, finish in sorted((b - buffer, e + buffer) for b, e in busy):
        if ends and begin <= ends[-1]:
            ends[-1] = max(ends[-1], finish)
        else:
            starts.append(begin)
            ends.append(finish)
    return starts, ends


def _overlaps(slot_start: datetime, slot_end: datetime, starts: list[datetime], ends: list[datetime]) -> bool:
    index = bisect.bisect_right(ends, slot_start)  # first blocked interval ending after the slot starts
    return index < len(starts) and starts[index] < slot_end


def free_slots(
    calendar: CalendarRules,
    tz: ZoneInfo,
    busy: list[tuple[datetime, datetime]],
    start: datetime,
    end: datetime,
    duration: timedelta,
    now: datetime,
) -> list[Slot]:
    """The free slots of ``duration`` that start in ``[start, end)``, earliest first, in UTC.

    Candidates start every ``slot_minutes`` from each opening's start (local wall-clock) and must end
    within that opening. A slot is dropped when it starts before ``now + min_notice`` or after
    ``now + booking_window_days``, falls on an excluded (local) date, or overlaps a busy interval
    widened by ``buffer_minutes`` on both sides. All datetimes must be timezone-aware.
    """
    _require_aware(start=start, end=end, now=now)
    if duration <= timedelta(0):
        raise ValueError("duration must be positive")
    earliest = max(start, now + timedelta(minutes=calendar.min_notice_minutes))
    latest = min(end, now + timedelta(days=calendar.booking_window_days) + timedelta(microseconds=1))
    if earliest >= latest:
        return []
    blocked_starts, blocked_ends = _blocked(busy, timedelta(minutes=calendar.buffer_minutes))
    step = calendar.slot_minutes
    slots: list[Slot] = []
    day = earliest.astimezone(tz).date() - timedelta(days=1)
    last_day = latest.astimezone(tz).date() + timedelta(days=1)
    while day <= last_day:
        if day not in calendar.excluded_dates:
            for open_minute, close_minute in calendar.weekly_hours.get(WEEKDAYS[day.weekday()], ()):
                closes = local_instant(day, close_minute, tz) or _after_gap(day, close_minute, tz)
                for minute in range(open_minute, close_minute, step):
                    begins = local_instant(day, minute, tz)
                    if begins is None or begins < earliest or begins >= latest:
                        continue
                    finishes = begins + duration
                    if finishes > closes:
                        break
                    if not _overlaps(begins, finishes, blocked_starts, blocked_ends):
                        slots.append(Slot(begins, finishes))
        day += timedelta(days=1)
    return slots


def _after_gap(day: date, minutes: int, tz: ZoneInfo) -> datetime:
    """An opening that closes inside a DST gap closes when the gap ends (the next existing minute)."""
    for later in range(minutes + 1, minutes + 24 * 60):
        instant = local_instant(day, later, tz)
        if instant is not None:
            return instant
    raise ValueError("no local time follows the gap")  # pragma: no cover - no zone has such a gap


@dataclass(frozen=True)
class CalendarView:
    """A calendar with what availability needs: its rules, its zone and its busy intervals."""

    calendar: Calendar
    rules: CalendarRules
    tz: ZoneInfo
    busy: list[tuple[datetime, datetime]]

    def free_slots(self, start: datetime, end: datetime, duration: timedelta, now: datetime) -> list[Slot]:
        """The calendar's free slots; none while it is inactive."""
        if not self.calendar.is_active:
            return []
        return free_slots(self.rules, self.tz, self.busy, start, end, duration, now)


async def load_calendar_view(
    db: AsyncSession, business_id: int, calendar_id: int | None, start: datetime, end: datetime
) -> CalendarView:
    """The business's calendar (its default one when ``calendar_id`` is None) and the live
    appointments that can touch slots starting in ``[start, end)``. Raises :class:`UnknownCalendar`."""
    _require_aware(start=start, end=end)
    calendar = await calendar_of(db, business_id, calendar_id)
    timezone = await db.scalar(select(Business.timezone).where(Business.id == business_id))
    # Slots may end after ``end`` (by up to an opening's length) and buffers reach further: a day's margin.
    margin = timedelta(days=1, minutes=calendar.buffer_minutes)
    rows = await db.execute(
        select(Appointment.starts_at, Appointment.ends_at).where(
            Appointment.calendar_id == calendar.id,
            Appointment.status != AppointmentStatus.CANCELLED.value,
            Appointment.starts_at < end + margin,
            Appointment.ends_at > start - margin,
        )
    )
    busy = [(row.starts_at, row.ends_at) for row in rows]
    return CalendarView(calendar, CalendarRules.of(calendar), zone(timezone), busy)


def zone(name: str | None) -> ZoneInfo:
    """The business's zone; UTC for a missing name (the column defaults to UTC)."""
    return ZoneInfo(name or "UTC")


def rules_json(rules: CalendarRules) -> dict[str, Any]:
    """Rules as JSON, e.g. for a tool result the phone agent reads."""
    return {
        "slot_minutes": rules.slot_minutes,
        "buffer_minutes": rules.buffer_minutes,
        "booking_window_days": rules.booking_window_days,
        "min_notice_minutes": rules.min_notice_minutes,
        "weekly_hours": format_weekly_hours(rules.weekly_hours),
        "excluded_dates": sorted(d.isoformat() for d in rules.excluded_dates),
    }
