"""The availability engine, pure: opening hours, breaks, buffers, notice, window, closed dates, long
durations, and DST weeks in Europe/Berlin and America/New_York checked as UTC instants."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from prosaas_common.scheduling.availability import (
    CalendarRules,
    InvalidRules,
    format_weekly_hours,
    free_slots,
    parse_excluded_dates,
    parse_weekly_hours,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
LONG_AGO = datetime(2026, 1, 1, tzinfo=UTC)
WEEKDAYS_9_17 = {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}


def rules(
    hours: dict[str, Any] | None = None,
    *,
    slot: int = 30,
    buffer: int = 0,
    window: int = 365,
    notice: int = 0,
    excluded: list[str] | None = None,
) -> CalendarRules:
    return CalendarRules(
        slot_minutes=slot,
        buffer_minutes=buffer,
        booking_window_days=window,
        min_notice_minutes=notice,
        weekly_hours=parse_weekly_hours(WEEKDAYS_9_17 if hours is None else hours),
        excluded_dates=parse_excluded_dates(excluded or []),
    )


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def local(tz: ZoneInfo, text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=tz)


def starts(
    calendar: CalendarRules,
    tz: ZoneInfo,
    first: datetime,
    last: datetime,
    *,
    minutes: int = 30,
    busy: list[tuple[datetime, datetime]] | None = None,
    now: datetime = LONG_AGO,
) -> list[str]:
    """Slot starts as UTC ISO strings (checking every slot lasts exactly ``minutes``)."""
    slots = free_slots(calendar, tz, busy or [], first, last, timedelta(minutes=minutes), now)
    assert all(s.ends_at - s.starts_at == timedelta(minutes=minutes) for s in slots)
    assert all(s.starts_at.utcoffset() == timedelta(0) for s in slots)
    return [s.starts_at.strftime("%Y-%m-%dT%H:%M") for s in slots]


def test_an_ordinary_day_is_cut_into_slots_in_local_time() -> None:
    # Monday 2 March 2026, Berlin on CET (UTC+1): 09:00-17:00 local is 08:00-16:00 UTC.
    day = starts(rules(), BERLIN, local(BERLIN, "2026-03-02T00:00"), local(BERLIN, "2026-03-03T00:00"))
    assert len(day) == 16
    assert (day[0], day[-1]) == ("2026-03-02T08:00", "2026-03-02T15:30")


def test_the_weekend_is_closed() -> None:
    assert starts(rules(), BERLIN, local(BERLIN, "2026-02-28T00:00"), local(BERLIN, "2026-03-02T00:00")) == []


def test_a_lunch_break_splits_the_day_and_a_slot_never_spans_it() -> None:
    calendar = rules({"mon": [["13:00", "17:00"], ["09:00", "12:00"]]})
    day = starts(
        calendar, BERLIN, local(BERLIN, "2026-03-02T00:00"), local(BERLIN, "2026-03-03T00:00"), minutes=60
    )
    assert day == [
        "2026-03-02T08:00",
        "2026-03-02T08:30",
        "2026-03-02T09:00",
        "2026-03-02T09:30",
        "2026-03-02T10:00",  # 11:00-12:00 local; 11:30 would run into the break
        "2026-03-02T12:00",
        "2026-03-02T12:30",
        "2026-03-02T13:00",
        "2026-03-02T13:30",
        "2026-03-02T14:00",
        "2026-03-02T14:30",
        "2026-03-02T15:00",
    ]


def test_busy_intervals_are_widened_by_the_buffer_on_both_sides() -> None:
    calendar = rules({"mon": [["09:00", "12:00"]]}, slot=15, buffer=15)
    busy = [(local(BERLIN, "2026-03-02T10:00"), local(BERLIN, "2026-03-02T10:30"))]
    day = starts(
        calendar, BERLIN, local(BERLIN, "2026-03-02T09:00"), local(BERLIN, "2026-03-02T11:30"), busy=busy
    )
    # Blocked 09:45-10:45 local (08:45-09:45 UTC): 09:15-09:45 still fits, 10:45 is the next start.
    assert day == [
        "2026-03-02T08:00",
        "2026-03-02T08:15",
        "2026-03-02T09:45",
        "2026-03-02T10:00",
        "2026-03-02T10:15",
    ]
    no_buffer = starts(
        rules({"mon": [["09:00", "12:00"]]}, slot=15),
        BERLIN,
        local(BERLIN, "2026-03-02T09:00"),
        local(BERLIN, "2026-03-02T11:30"),
        busy=busy,
    )
    assert "2026-03-02T08:30" in no_buffer
    assert "2026-03-02T09:15" not in no_buffer


def test_overlapping_busy_intervals_are_merged() -> None:
    calendar = rules({"mon": [["09:00", "12:00"]]})
    busy = [
        (local(BERLIN, "2026-03-02T10:00"), local(BERLIN, "2026-03-02T11:00")),
        (local(BERLIN, "2026-03-02T09:00"), local(BERLIN, "2026-03-02T10:30")),
    ]
    day = starts(
        calendar, BERLIN, local(BERLIN, "2026-03-02T00:00"), local(BERLIN, "2026-03-03T00:00"), busy=busy
    )
    assert day == ["2026-03-02T10:00", "2026-03-02T10:30"]  # 11:00 and 11:30 local


def test_min_notice_hides_slots_too_soon() -> None:
    now = local(BERLIN, "2026-03-02T09:10")
    day = starts(
        rules(notice=60),
        BERLIN,
        local(BERLIN, "2026-03-02T00:00"),
        local(BERLIN, "2026-03-03T00:00"),
        now=now,
    )
    assert day[0] == "2026-03-02T09:30"  # 10:30 local: 10:00 is less than an hour after 09:10


def test_the_booking_window_ends_the_offer() -> None:
    now = local(BERLIN, "2026-03-02T12:00")
    week = (local(BERLIN, "2026-03-02T00:00"), local(BERLIN, "2026-03-09T00:00"))
    one_day = starts(rules(window=1), BERLIN, *week, now=now)
    assert one_day[0] == "2026-03-02T11:00"
    assert one_day[-1] == "2026-03-03T11:00"
    assert {s[:10] for s in starts(rules(window=2), BERLIN, *week, now=now)} == {
        "2026-03-02",
        "2026-03-03",
        "2026-03-04",
    }


def test_excluded_dates_are_closed() -> None:
    calendar = rules(excluded=["2026-03-03"])
    days = {
        s[:10]
        for s in starts(
            calendar, BERLIN, local(BERLIN, "2026-03-02T00:00"), local(BERLIN, "2026-03-05T00:00")
        )
    }
    assert days == {"2026-03-02", "2026-03-04"}


def test_a_duration_longer_than_a_slot_must_fit_in_one_opening() -> None:
    calendar = rules({"mon": [["09:00", "12:00"], ["12:00", "13:00"]]})
    day = starts(
        calendar, BERLIN, local(BERLIN, "2026-03-02T00:00"), local(BERLIN, "2026-03-03T00:00"), minutes=90
    )
    # 09:00, 09:30, 10:00, 10:30 local; never across 12:00 into the next opening.
    assert day == ["2026-03-02T08:00", "2026-03-02T08:30", "2026-03-02T09:00", "2026-03-02T09:30"]
    assert (
        starts(
            calendar,
            BERLIN,
            local(BERLIN, "2026-03-02T00:00"),
            local(BERLIN, "2026-03-03T00:00"),
            minutes=240,
        )
        == []
    )


def test_a_busy_interval_blocks_every_slot_it_touches_for_long_durations() -> None:
    calendar = rules({"mon": [["09:00", "12:00"]]})
    busy = [(local(BERLIN, "2026-03-02T11:00"), local(BERLIN, "2026-03-02T11:30"))]
    day = starts(
        calendar,
        BERLIN,
        local(BERLIN, "2026-03-02T00:00"),
        local(BERLIN, "2026-03-03T00:00"),
        minutes=90,
        busy=busy,
    )
    # 09:00-10:30 and 09:30-11:00 (touching 11:00 is no overlap); later starts would cover 11:00.
    assert day == ["2026-03-02T08:00", "2026-03-02T08:30"]


every_day = {day: [["09:00", "10:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


@pytest.mark.parametrize(
    ("tz", "before", "after", "utc_before", "utc_after"),
    [
        # Spring forward: Berlin 29 March 2026, New York 8 March 2026.
        (BERLIN, "2026-03-28", "2026-03-30", "2026-03-28T08:00", "2026-03-30T07:00"),
        (NEW_YORK, "2026-03-07", "2026-03-09", "2026-03-07T14:00", "2026-03-09T13:00"),
        # Fall back: Berlin 25 October 2026, New York 1 November 2026.
        (BERLIN, "2026-10-24", "2026-10-26", "2026-10-24T07:00", "2026-10-26T08:00"),
        (NEW_YORK, "2026-10-31", "2026-11-02", "2026-10-31T13:00", "2026-11-02T14:00"),
    ],
)
def test_nine_oclock_stays_nine_oclock_across_dst(
    tz: ZoneInfo, before: str, after: str, utc_before: str, utc_after: str
) -> None:
    calendar = rules(every_day, slot=60)
    week = starts(calendar, tz, local(tz, f"{before}T00:00"), local(tz, f"{after}T23:59"), minutes=60)
    assert week[0] == utc_before
    assert week[-1] == utc_after
    assert len(week) == 3
    slots = free_slots(
        calendar,
        tz,
        [],
        local(tz, f"{before}T00:00"),
        local(tz, f"{after}T23:59"),
        timedelta(hours=1),
        LONG_AGO,
    )
    assert all(s.starts_at.astimezone(tz).hour == 9 for s in slots)


def test_spring_forward_skips_the_missing_hour() -> None:
    night = {"sun": [["01:00", "04:00"]]}
    berlin = starts(rules(night), BERLIN, utc("2026-03-28T12:00"), utc("2026-03-29T12:00"))
    # 02:00 and 02:30 do not exist on 29 March in Berlin.
    assert berlin == ["2026-03-29T00:00", "2026-03-29T00:30", "2026-03-29T01:00", "2026-03-29T01:30"]
    new_york = starts(
        rules(night, slot=60), NEW_YORK, utc("2026-03-07T12:00"), utc("2026-03-08T12:00"), minutes=60
    )
    assert new_york == ["2026-03-08T06:00", "2026-03-08T07:00"]  # 01:00 EST, 03:00 EDT (02:00 skipped)


def test_spring_forward_durations_are_real_time_and_must_end_by_closing() -> None:
    # 01:00-04:00 local on the short night lasts two real hours (00:00-02:00 UTC).
    calendar = rules({"sun": [["01:00", "04:00"]]})
    assert starts(calendar, BERLIN, utc("2026-03-28T12:00"), utc("2026-03-29T12:00"), minutes=90) == [
        "2026-03-29T00:00",
        "2026-03-29T00:30",
    ]


def test_fall_back_reads_ambiguous_times_as_their_first_occurrence() -> None:
    calendar = rules({"sun": [["01:00", "03:00"]]}, slot=60)
    berlin = starts(calendar, BERLIN, utc("2026-10-24T12:00"), utc("2026-10-25T12:00"), minutes=60)
    # Wall-clock starts 01:00 and 02:00: 01:00 CEST = 23:00Z, 02:00 (first, CEST) = 00:00Z.
    assert berlin == ["2026-10-24T23:00", "2026-10-25T00:00"]
    new_york = starts(
        rules({"sun": [["01:00", "02:00"]]}), NEW_YORK, utc("2026-10-31T12:00"), utc("2026-11-01T12:00")
    )
    # 01:00 and 01:30 EDT (fold=0): 05:00Z and 05:30Z, not the repeated EST hour (06:00Z, 06:30Z).
    assert new_york == ["2026-11-01T05:00", "2026-11-01T05:30"]


def test_only_slots_starting_in_the_range_are_offered() -> None:
    day = starts(rules(), BERLIN, local(BERLIN, "2026-03-02T10:15"), local(BERLIN, "2026-03-02T11:00"))
    assert day == ["2026-03-02T09:30"]


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        free_slots(
            rules(),
            BERLIN,
            [],
            datetime(2026, 3, 2),
            utc("2026-03-03T00:00"),
            timedelta(minutes=30),
            LONG_AGO,
        )


@pytest.mark.parametrize(
    ("hours", "field"),
    [
        ({"monday": [["09:00", "17:00"]]}, "weekly_hours"),
        ({"mon": [["9:00", "17:00"]]}, "mon"),
        ({"tue": [["17:00", "09:00"]]}, "tue"),
        ({"wed": [["09:00", "12:00"], ["11:00", "13:00"]]}, "wed"),
        ({"thu": [["09:00"]]}, "thu"),
        ({"fri": [["24:30", "25:00"]]}, "fri"),
        ([], "weekly_hours"),
    ],
)
def test_bad_opening_hours_name_the_day(hours: Any, field: str) -> None:
    with pytest.raises(InvalidRules) as raised:
        parse_weekly_hours(hours)
    assert raised.value.field == field


def test_opening_hours_round_trip_and_may_end_at_midnight() -> None:
    parsed = parse_weekly_hours({"sat": [["18:00", "24:00"], ["08:00", "12:00"]]})
    assert parsed["sat"] == ((480, 720), (1080, 1440))
    assert format_weekly_hours(parsed)["sat"] == [["08:00", "12:00"], ["18:00", "24:00"]]
    assert format_weekly_hours(parsed)["mon"] == []


def test_excluded_dates_must_be_iso_dates() -> None:
    assert parse_excluded_dates(["2026-12-25"]) == frozenset({date(2026, 12, 25)})
    for bad in (["25.12.2026"], ["2026-02-30"], [20261225], "2026-12-25"):
        with pytest.raises(InvalidRules):
            parse_excluded_dates(bad)
