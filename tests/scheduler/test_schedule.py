"""Slot maths (epoch-aligned intervals, cron in a timezone across DST) and schedule validation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import islice, pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from prosaas_common.jobs import Queue
from prosaas_scheduler.schedule import (
    Schedule,
    count_due,
    due_slots,
    iter_slots,
    latest_slot,
    to_epoch,
    unique_schedules,
)
from prosaas_scheduler.schedules import SCHEDULES, load_schedules

BERLIN = ZoneInfo("Europe/Berlin")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def every(minutes: float = 0, **kwargs: Any) -> Schedule:
    return Schedule(name="s", job="job", queue=Queue.DEFAULT, every=timedelta(minutes=minutes), **kwargs)


def cron(expr: str, timezone: str = "UTC") -> Schedule:
    return Schedule(name="c", job="job", queue=Queue.DEFAULT, cron=expr, timezone=timezone)


# Intervals ------------------------------------------------------------------------------------------


def test_interval_slots_are_aligned_to_the_epoch() -> None:
    schedule = every(5)
    slots = list(islice(iter_slots(schedule, utc(2024, 3, 1, 10, 2, 17)), 3))
    assert slots == [utc(2024, 3, 1, 10, 5), utc(2024, 3, 1, 10, 10), utc(2024, 3, 1, 10, 15)]
    assert latest_slot(schedule, utc(2024, 3, 1, 10, 9, 59)) == utc(2024, 3, 1, 10, 5)


def test_interval_alignment_does_not_depend_on_the_start_time() -> None:
    schedule = every(7)
    for start in (utc(2024, 1, 1), utc(2024, 1, 1, 0, 3, 33), utc(2031, 7, 4, 13, 1)):
        for slot in islice(iter_slots(schedule, start), 5):
            assert to_epoch(slot) % 420 == 0
            assert slot > start


def test_interval_ignores_the_timezone_field() -> None:
    daily = Schedule(name="d", job="j", queue=Queue.LOW, every=timedelta(days=1), timezone="Asia/Tokyo")
    assert latest_slot(daily, utc(2024, 3, 1, 18)) == utc(2024, 3, 1)


def test_slot_boundaries_after_is_exclusive_until_is_inclusive() -> None:
    schedule = every(60)
    after, until = utc(2024, 3, 1, 1), utc(2024, 3, 1, 4)
    assert due_slots(schedule, after, until) == [utc(2024, 3, 1, 2), utc(2024, 3, 1, 3), utc(2024, 3, 1, 4)]
    assert due_slots(schedule, after, until, limit=2) == [utc(2024, 3, 1, 2), utc(2024, 3, 1, 3)]
    assert due_slots(schedule, after, after) == []
    assert due_slots(schedule, until, after) == []
    assert count_due(schedule, after, until, limit=1) == 3  # intervals are counted exactly
    assert latest_slot(schedule, utc(2024, 3, 1, 4)) == utc(2024, 3, 1, 4)
    # fractions of a second never create or move a slot
    assert latest_slot(schedule, utc(2024, 3, 1, 4) - timedelta(microseconds=1)) == utc(2024, 3, 1, 3)
    assert due_slots(schedule, after + timedelta(microseconds=500), until)[0] == utc(2024, 3, 1, 2)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        latest_slot(every(5), datetime(2024, 3, 1, 10))


# Cron -----------------------------------------------------------------------------------------------


def test_cron_slots_in_utc() -> None:
    schedule = cron("15 */6 * * *")
    slots = due_slots(schedule, utc(2024, 3, 1), utc(2024, 3, 2))
    assert slots == [utc(2024, 3, 1, h, 15) for h in (0, 6, 12, 18)]
    assert latest_slot(schedule, utc(2024, 3, 1, 12, 15)) == utc(2024, 3, 1, 12, 15)
    assert latest_slot(schedule, utc(2024, 3, 1, 12, 14, 59)) == utc(2024, 3, 1, 6, 15)
    assert count_due(schedule, utc(2024, 3, 1), utc(2024, 3, 2), limit=1000) == 4
    assert count_due(schedule, utc(2024, 3, 1), utc(2024, 3, 2), limit=2) == 2


def test_cron_follows_local_time_of_its_timezone() -> None:
    # 09:00 in New York is 14:00 UTC in winter (EST) and 13:00 UTC after the March change (EDT).
    schedule = cron("0 9 * * *", "America/New_York")
    slots = due_slots(schedule, utc(2024, 3, 8), utc(2024, 3, 12))
    assert slots == [utc(2024, 3, 8, 14), utc(2024, 3, 9, 14), utc(2024, 3, 10, 13), utc(2024, 3, 11, 13)]


def test_cron_spring_forward_runs_a_skipped_time_once() -> None:
    # Europe/Berlin, 2024-03-31: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist that day.
    schedule = cron("30 2 * * *", "Europe/Berlin")
    slots = due_slots(schedule, utc(2024, 3, 29, 12), utc(2024, 4, 1, 12))
    assert slots == [utc(2024, 3, 30, 1, 30), utc(2024, 3, 31, 1, 0), utc(2024, 4, 1, 0, 30)]
    assert [s.astimezone(BERLIN).strftime("%d %H:%M") for s in slots] == ["30 02:30", "31 03:00", "01 02:30"]


def test_cron_fall_back_runs_a_repeated_time_once() -> None:
    # Europe/Berlin, 2024-10-27: 03:00 CEST falls back to 02:00 CET; 02:30 happens twice on the wall.
    schedule = cron("30 2 * * *", "Europe/Berlin")
    slots = due_slots(schedule, utc(2024, 10, 25, 12), utc(2024, 10, 28, 12))
    assert slots == [utc(2024, 10, 26, 0, 30), utc(2024, 10, 27, 0, 30), utc(2024, 10, 28, 1, 30)]


def test_cron_hourly_counts_real_hours_across_dst() -> None:
    schedule = cron("0 * * * *", "Europe/Berlin")

    def local_day(year: int, month: int, day: int) -> list[datetime]:
        start = datetime(year, month, day, tzinfo=BERLIN)
        end = datetime(year, month, day, 23, 59, tzinfo=BERLIN)
        return due_slots(schedule, start - timedelta(seconds=1), end)

    assert len(local_day(2024, 3, 31)) == 23
    assert len(local_day(2024, 10, 27)) == 25
    fall_back = local_day(2024, 10, 27)
    assert all(b - a == timedelta(hours=1) for a, b in pairwise(fall_back))


def test_cron_slots_never_go_backwards_from_inside_a_repeated_hour() -> None:
    schedule = cron("30 2 * * *", "Europe/Berlin")
    # 02:10 CET, the second pass through 02:xx (00:30 UTC, i.e. the first 02:30, is already behind us)
    inside = datetime(2024, 10, 27, 2, 10, fold=1, tzinfo=BERLIN)
    assert inside.astimezone(UTC) == utc(2024, 10, 27, 1, 10)
    assert next(iter_slots(schedule, inside)) == utc(2024, 10, 28, 1, 30)
    assert latest_slot(schedule, inside) == utc(2024, 10, 27, 0, 30)
    assert latest_slot(schedule, utc(2024, 3, 31, 1, 0, 1)) == utc(2024, 3, 31, 1, 0)


def test_cron_with_seconds_field() -> None:
    schedule = cron("*/20 * * * * *")
    assert due_slots(schedule, utc(2024, 3, 1), utc(2024, 3, 1, 0, 1)) == [
        utc(2024, 3, 1, 0, 0, 20),
        utc(2024, 3, 1, 0, 0, 40),
        utc(2024, 3, 1, 0, 1),
    ]


# Validation -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"every": timedelta(minutes=5), "cron": "* * * * *"}, "exactly one"),
        ({}, "exactly one"),
        ({"every": timedelta(0)}, "greater than zero"),
        ({"every": timedelta(seconds=-5)}, "greater than zero"),
        ({"every": timedelta(seconds=1.5)}, "whole number of seconds"),
        ({"cron": "61 * * * *"}, "invalid cron"),
        ({"cron": "* * *"}, "invalid cron"),
        ({"cron": "0 0 30 2 *"}, "invalid cron"),
        ({"cron": "0 * * * *", "timezone": "Mars/Olympus"}, "unknown timezone"),
        ({"every": timedelta(minutes=1), "on_missed": "sometimes"}, "on_missed"),
        ({"every": timedelta(minutes=1), "kwargs": {"scheduled_for": 1}}, "reserved"),
        ({"every": timedelta(minutes=1), "kwargs": {"_job_id": "x"}}, "reserved"),
        ({"every": timedelta(minutes=1), "kwargs": {"queue": "x"}}, "reserved"),
        ({"every": timedelta(minutes=1), "kwargs": {"not valid": 1}}, "identifier"),
        ({"every": timedelta(minutes=1), "name": "a:b"}, "schedule name"),
        ({"every": timedelta(minutes=1), "name": ""}, "schedule name"),
        ({"every": timedelta(minutes=1), "job": " "}, "job must be"),
        ({"every": timedelta(minutes=1), "queue": "default"}, "Queue"),
    ],
)
def test_invalid_schedules_are_refused(options: dict[str, Any], message: str) -> None:
    fields: dict[str, Any] = {"name": "bad", "job": "job", "queue": Queue.DEFAULT, **options}
    with pytest.raises(ValueError, match=message):
        Schedule(**fields)


def test_schedule_is_frozen_and_its_kwargs_read_only() -> None:
    source = {"limit": 10}
    schedule = every(5, kwargs=source)
    source["limit"] = 99
    assert schedule.kwargs == {"limit": 10}
    with pytest.raises(TypeError):
        schedule.kwargs["limit"] = 1  # type: ignore[index]
    with pytest.raises(AttributeError):
        schedule.name = "other"  # type: ignore[misc]
    assert hash(schedule) == hash(every(5, kwargs={"limit": 10}))


def test_names_must_be_unique() -> None:
    with pytest.raises(ValueError, match="duplicate schedule name 's'"):
        unique_schedules([every(5), every(10)])
    with pytest.raises(ValueError, match="not a Schedule"):
        unique_schedules(["s"])  # type: ignore[list-item]


def test_load_schedules() -> None:
    assert load_schedules(None) == tuple(SCHEDULES)
    assert "webhooks-recover" in {schedule.name for schedule in SCHEDULES}
    loaded = load_schedules("tests.scheduler.jobs:PROCESS_SCHEDULES")
    assert [s.name for s in loaded] == ["every-second"]
    for spec, message in [
        ("tests.scheduler.jobs", "expected 'package.module:attribute'"),
        ("tests.scheduler.nowhere:X", "cannot import"),
        ("tests.scheduler.jobs:MISSING", "no attribute"),
        ("tests.scheduler.jobs:NOT_A_LIST", "expected a list"),
        ("tests.scheduler.jobs:DUPLICATE_NAMES", "duplicate schedule name"),
    ]:
        with pytest.raises(ValueError, match=message):
            load_schedules(spec)


@pytest.mark.parametrize("expr", ["30 2 * * *", "0 * * * *", "*/20 1-3 * * *", "45 2 * * 0"])
@pytest.mark.parametrize("day", [utc(2024, 3, 30, 20), utc(2024, 10, 26, 20)])
def test_latest_slot_agrees_with_forward_iteration_across_dst(expr: str, day: datetime) -> None:
    schedule = cron(expr, "Europe/Berlin")
    forward = due_slots(schedule, day - timedelta(days=8), day + timedelta(hours=12))
    for minutes in range(0, 12 * 60, 7):
        at = day + timedelta(minutes=minutes, seconds=13)
        expected = max(slot for slot in forward if slot <= at)
        assert latest_slot(schedule, at) == expected, at
