"""Request and response bodies of calendars, availability and appointments."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from prosaas_api.ids import BodyId
from prosaas_common.models import APPOINTMENT_STATUSES
from prosaas_common.scheduling.availability import (
    InvalidRules,
    format_weekly_hours,
    parse_excluded_dates,
    parse_weekly_hours,
)

Name = Annotated[str, Field(min_length=1, max_length=100)]
WeeklyHours = dict[str, list[list[str]]]
AppointmentStatusName = Literal["scheduled", "confirmed", "cancelled", "completed", "no_show"]
assert set(APPOINTMENT_STATUSES) == set(AppointmentStatusName.__args__)  # type: ignore[attr-defined]


def checked_hours(value: Any) -> WeeklyHours:
    try:
        return format_weekly_hours(parse_weekly_hours(value))
    except InvalidRules as exc:
        where = "" if exc.field == "weekly_hours" else f"{exc.field}: "
        raise ValueError(f"{where}{exc.message}") from None


def checked_dates(value: Any) -> list[str]:
    try:
        return sorted(d.isoformat() for d in parse_excluded_dates(value))
    except InvalidRules as exc:
        raise ValueError(exc.message) from None


class CalendarFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    is_default: bool | None = None
    is_active: bool | None = None
    slot_minutes: Annotated[int, Field(ge=5, le=480)] | None = None
    buffer_minutes: Annotated[int, Field(ge=0, le=240)] | None = None
    booking_window_days: Annotated[int, Field(ge=1, le=730)] | None = None
    min_notice_minutes: Annotated[int, Field(ge=0, le=43200)] | None = None
    weekly_hours: WeeklyHours | None = Field(
        default=None, description='{"mon": [["09:00", "17:00"]], ..., "sun": []} in the business time zone'
    )
    excluded_dates: list[str] | None = Field(default=None, description="ISO dates the calendar is closed")

    @field_validator("weekly_hours", mode="before")
    @classmethod
    def _hours(cls, value: Any) -> Any:
        return None if value is None else checked_hours(value)

    @field_validator("excluded_dates", mode="before")
    @classmethod
    def _dates(cls, value: Any) -> Any:
        return None if value is None else checked_dates(value)


class CalendarCreate(CalendarFields):
    name: Name


class CalendarUpdate(CalendarFields):
    pass


class CalendarOut(BaseModel):
    id: int
    name: str
    is_default: bool
    is_active: bool
    slot_minutes: int
    buffer_minutes: int
    booking_window_days: int
    min_notice_minutes: int
    weekly_hours: WeeklyHours
    excluded_dates: list[str]
    created_at: datetime
    updated_at: datetime


class SlotOut(BaseModel):
    starts_at: datetime
    ends_at: datetime


class Availability(BaseModel):
    calendar_id: int
    timezone: str = Field(description="the business's IANA time zone, in which opening hours are read")
    duration_minutes: int
    slots: list[SlotOut] = Field(description="free slots, earliest first, times in UTC")


class AppointmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    calendar_id: BodyId | None = Field(default=None, description="the default calendar when left out")
    lead_id: BodyId | None = None
    starts_at: AwareDatetime
    duration_minutes: Annotated[int, Field(ge=5, le=1440)] | None = None
    ends_at: AwareDatetime | None = None
    title: Annotated[str, Field(max_length=200)] = ""
    notes: Annotated[str, Field(max_length=5000)] = ""

    @model_validator(mode="after")
    def _one_end(self) -> Self:
        if (self.duration_minutes is None) == (self.ends_at is None):
            raise ValueError("give either duration_minutes or ends_at")
        if self.ends_at is not None and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        if self.ends_at is not None and (self.ends_at - self.starts_at).total_seconds() > 86400:
            raise ValueError("an appointment lasts at most 24 hours")
        return self

    def duration(self) -> timedelta:
        if self.ends_at is not None:
            return self.ends_at - self.starts_at
        return timedelta(minutes=self.duration_minutes or 0)


class AppointmentUpdate(BaseModel):
    """Fields left out stay; moving ``starts_at`` alone keeps the duration."""

    model_config = ConfigDict(extra="forbid")

    lead_id: BodyId | None = None
    starts_at: AwareDatetime | None = None
    duration_minutes: Annotated[int, Field(ge=5, le=1440)] | None = None
    ends_at: AwareDatetime | None = None
    title: Annotated[str, Field(max_length=200)] | None = None
    notes: Annotated[str, Field(max_length=5000)] | None = None
    status: AppointmentStatusName | None = None

    @model_validator(mode="after")
    def _one_end(self) -> Self:
        if self.duration_minutes is not None and self.ends_at is not None:
            raise ValueError("give either duration_minutes or ends_at")
        return self


class Clash(BaseModel):
    starts_at: datetime | None
    ends_at: datetime | None
    appointment_id: int | None


class AppointmentOut(BaseModel):
    id: int
    calendar_id: int
    lead_id: int | None
    call_sid: str | None
    title: str
    notes: str
    status: AppointmentStatusName
    starts_at: datetime
    ends_at: datetime
    created_by_user_id: int | None
    created_at: datetime
    updated_at: datetime


class AppointmentPage(BaseModel):
    items: list[AppointmentOut]
    next_cursor: str | None = Field(description="pass as cursor for the next page; null at the end")
