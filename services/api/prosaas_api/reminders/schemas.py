"""Request and response bodies of reminders and notifications."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from prosaas_api.ids import BodyId
from prosaas_common.models.reminder import REMINDER_CHANNELS, REMINDER_STATUSES

ReminderStatusName = Literal["pending", "sent", "done"]
ReminderChannelName = Literal["in_app", "email"]
assert set(REMINDER_STATUSES) == set(ReminderStatusName.__args__)  # type: ignore[attr-defined]
assert set(REMINDER_CHANNELS) == set(ReminderChannelName.__args__)  # type: ignore[attr-defined]

MAX_SNOOZE_MINUTES = 60 * 24 * 30


def sensible_time(value: datetime) -> datetime:
    """Times far outside any plausible schedule are refused here (a year 1 or 9999 time with an offset
    cannot even be converted to UTC)."""
    if not 2000 <= value.year <= 2999:
        raise ValueError("must be between the years 2000 and 2999")
    return value


DueTime = Annotated[AwareDatetime, AfterValidator(sensible_time)]


class ReminderCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    due_at: DueTime = Field(description="ISO 8601 with an offset, e.g. 2027-03-01T09:00:00+01:00")
    note: Annotated[str, Field(min_length=1, max_length=2000)]
    lead_id: BodyId | None = None
    assignee_user_id: BodyId | None = Field(default=None, description="an active user; default the caller")
    channel: ReminderChannelName = "in_app"


class ReminderSnooze(BaseModel):
    """Exactly one of ``until`` (a later time) or ``minutes`` (from now)."""

    model_config = ConfigDict(extra="forbid")

    until: DueTime | None = None
    minutes: Annotated[int, Field(ge=1, le=MAX_SNOOZE_MINUTES)] | None = None

    @model_validator(mode="after")
    def _one_of(self) -> Self:
        if (self.until is None) == (self.minutes is None):
            raise ValueError("give exactly one of until or minutes")
        return self


class ReminderOut(BaseModel):
    id: int
    lead_id: int | None
    assignee_user_id: int
    created_by_user_id: int | None
    note: str
    due_at: datetime
    channel: ReminderChannelName
    status: ReminderStatusName
    sent_at: datetime | None
    done_at: datetime | None
    created_at: datetime
    updated_at: datetime


class ReminderList(BaseModel):
    items: list[ReminderOut]


class NotificationOut(BaseModel):
    id: int
    kind: str
    title: str
    body: str
    link: str | None
    reminder_id: int | None
    read_at: datetime | None
    created_at: datetime


class NotificationPage(BaseModel):
    items: list[NotificationOut]
    unread_count: int
    next_before: int | None


class ReadAll(BaseModel):
    marked: int = Field(description="how many notifications were unread until now")
