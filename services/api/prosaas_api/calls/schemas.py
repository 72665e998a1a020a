"""Response bodies of phone calls, and the query values their routes accept."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from prosaas_api.appointments.schemas import AppointmentStatusName
from prosaas_common.models.call import CALL_STATUSES

CallStatusName = Literal[
    "queued", "ringing", "in-progress", "completed", "busy", "failed", "no-answer", "canceled"
]
DirectionName = Literal["inbound", "outbound"]
SpeakerName = Literal["caller", "agent", "system"]
assert set(CALL_STATUSES) == set(CallStatusName.__args__)  # type: ignore[attr-defined]

# Twilio call sids: "CA" and 32 lowercase hex digits.
CALL_SID_PATTERN = r"^CA[0-9a-f]{32}$"


def sensible_time(value: datetime) -> datetime:
    """Refused here rather than in the database: a year-1 time with an offset cannot even be turned
    into UTC, and no call happened outside these years."""
    if not 2000 <= value.year <= 2999:
        raise ValueError("must be between the years 2000 and 2999")
    return value


RangeTime = Annotated[AwareDatetime, AfterValidator(sensible_time)]


class CallOut(BaseModel):
    id: int
    call_sid: str
    direction: DirectionName
    status: CallStatusName
    from_number: str = Field(description='E.164, or "anonymous"')
    to_number: str
    lead_id: int | None
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    duration_s: int | None
    end_reason: str | None
    provider: str | None
    stream_sid: str | None
    recording_sid: str | None
    recording_url: str | None = Field(description="where the recording is served; null without one")
    usage: dict[str, Any]
    summary: str | None
    created_at: datetime
    updated_at: datetime


class CallPage(BaseModel):
    items: list[CallOut]
    next_cursor: str | None = Field(description="pass as cursor for the next page; null at the end")


class TurnOut(BaseModel):
    id: int
    speaker: SpeakerName
    text: str
    offset_ms: int = Field(description="since the call started")


class BookedAppointment(BaseModel):
    id: int
    starts_at: datetime
    status: AppointmentStatusName


class CallDetail(CallOut):
    turns: list[TurnOut] = Field(description="what was said, in order")
    appointments: list[BookedAppointment] = Field(description="appointments booked during the call")


class CallStats(BaseModel):
    """Figures of the calls that started in ``[from, to)``."""

    model_config = ConfigDict(populate_by_name=True)

    start: datetime = Field(alias="from")
    end: datetime = Field(alias="to")
    total: int
    by_status: dict[CallStatusName, int] = Field(description="every status, 0 when none")
    by_direction: dict[DirectionName, int]
    answered: int = Field(description="calls that were picked up")
    booked: int = Field(description="calls during which an appointment was booked")
    total_duration_s: int
    average_duration_s: float | None = Field(description="over calls with a duration; null when none")
