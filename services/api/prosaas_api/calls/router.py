"""/api/calls: the business's phone calls, read-only. The calls service writes them (and their turns)
while Twilio reports on them; staff read the list, one call with what was said and what it booked, and
figures over a period."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import ColumnElement, func, or_, tuple_

from prosaas_api.appointments.router import AppointmentRepository
from prosaas_api.auth.permissions import Permission
from prosaas_api.auth.principal import Principal, require
from prosaas_api.calls.recording import MEDIA_TYPE, recording_response
from prosaas_api.calls.schemas import (
    CALL_SID_PATTERN,
    BookedAppointment,
    CallDetail,
    CallOut,
    CallPage,
    CallStats,
    CallStatusName,
    DirectionName,
    RangeTime,
    TurnOut,
    sensible_time,
)
from prosaas_api.errors import field_error
from prosaas_api.ids import MAX_ROW_ID, QueryId
from prosaas_api.tenancy import TenantRepository, not_found
from prosaas_common.models import Appointment, Call, CallTurn
from prosaas_common.models.call import CALL_STATUSES
from prosaas_common.storage import open_store
from prosaas_common.web import DbSession, resources_of

router = APIRouter(prefix="/api/calls", tags=["calls"])
Reader = Annotated[Principal, Depends(require(Permission.LEADS_READ))]
CallSid = Annotated[str, Path(pattern=CALL_SID_PATTERN, description="a Twilio call sid: CA + 32 hex digits")]
From = Annotated[RangeTime | None, Query(alias="from", description="started at or after")]
To = Annotated[RangeTime | None, Query(alias="to", description="started before")]
STATS_DAYS = 30


class CallRepository(TenantRepository[Call]):
    model = Call
    label = "call"

    async def by_sid(self, call_sid: str) -> Call:
        call = await self.db.scalar(self.query().where(Call.call_sid == call_sid))
        if call is None:
            raise not_found(self.label)
        return call


class TurnRepository(TenantRepository[CallTurn]):
    model = CallTurn
    label = "turn"


def call_fields(call: Call) -> dict[str, Any]:
    """The response fields of a call row; the recording's storage path stays inside."""
    values = {name: getattr(call, name) for name in CallOut.model_fields if name != "recording_url"}
    values["recording_url"] = f"/api/calls/{call.call_sid}/recording" if call.recording_path else None
    return values


def encode_cursor(call: Call) -> str:
    raw = json.dumps({"at": call.started_at.isoformat(), "id": call.id}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """The (started_at, id) a page ended at; anything but a cursor this list made is a 422."""
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        started_at, call_id = sensible_time(datetime.fromisoformat(data["at"])), data["id"]
        if started_at.tzinfo is None or type(call_id) is not int or not 0 < call_id <= MAX_ROW_ID:
            raise ValueError("not a position in this list")
    except (ValueError, KeyError, TypeError, binascii.Error):  # JSONDecodeError is a ValueError
        raise field_error("cursor", "not a cursor of this list", location="query") from None
    return started_at, call_id


def check_range(start: datetime | None, end: datetime | None) -> None:
    if start is not None and end is not None and end < start:
        raise field_error("to", "must not be before from", location="query")


def number_digits(q: str) -> str:
    digits = "".join(c for c in q if c.isascii() and c.isdigit())
    if not digits:
        raise field_error("q", "give digits of a phone number", location="query")
    return digits


@router.get("", operation_id="calls_list", response_model=CallPage)
async def list_calls(
    principal: Reader,
    db: DbSession,
    direction: DirectionName | None = None,
    status: Annotated[list[CallStatusName] | None, Query(description="repeatable")] = None,
    lead_id: QueryId | None = None,
    start: From = None,
    end: To = None,
    q: Annotated[
        str | None, Query(max_length=40, description="digits of the caller's or the called number")
    ] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> CallPage:
    """Newest first (by start, then id), keyset pages of ``limit`` with ``next_cursor``."""
    check_range(start, end)
    query = CallRepository(db, principal).query()
    if direction is not None:
        query = query.where(Call.direction == direction)
    if status:
        query = query.where(Call.status.in_(status))
    if lead_id is not None:
        query = query.where(Call.lead_id == lead_id)
    if start is not None:
        query = query.where(Call.started_at >= start)
    if end is not None:
        query = query.where(Call.started_at < end)
    if q is not None:
        pattern = f"%{number_digits(q)}%"  # digits only: nothing to escape
        query = query.where(or_(Call.from_number.like(pattern), Call.to_number.like(pattern)))
    if cursor is not None:
        query = query.where(tuple_(Call.started_at, Call.id) < tuple_(*decode_cursor(cursor)))
    rows = list(await db.scalars(query.order_by(Call.started_at.desc(), Call.id.desc()).limit(limit + 1)))
    page = rows[:limit]
    return CallPage(
        items=[CallOut.model_validate(call_fields(c)) for c in page],
        next_cursor=encode_cursor(page[-1]) if len(rows) > limit else None,
    )


@router.get("/stats", operation_id="calls_stats", response_model=CallStats)
async def call_stats(principal: Reader, db: DbSession, start: From = None, end: To = None) -> CallStats:
    """Figures of the calls that started in ``[from, to)``; by default the last 30 days (UTC)."""
    check_range(start, end)
    end = end or (datetime.now(UTC) if start is None else max(start, datetime.now(UTC)))
    start = start or end - timedelta(days=STATS_DAYS)
    repository = CallRepository(db, principal)
    booked: ColumnElement[bool] = (
        AppointmentRepository(db, principal).query().where(Appointment.call_sid == Call.call_sid).exists()
    )
    groups = await db.execute(
        repository.query()
        .with_only_columns(
            Call.status,
            Call.direction,
            func.count(),
            func.count(Call.answered_at),
            func.sum(Call.duration_s),
            func.count(Call.duration_s),
            func.count().filter(booked),
        )
        .where(Call.started_at >= start, Call.started_at < end)
        .group_by(Call.status, Call.direction)
    )
    by_status = dict.fromkeys(CALL_STATUSES, 0)
    by_direction = {"inbound": 0, "outbound": 0}
    answered = total_duration = with_duration = booked_calls = 0
    for status, direction, count, answered_count, duration, durations, booked_count in groups:
        by_status[status] += count
        by_direction[direction] += count
        answered += answered_count
        total_duration += duration or 0  # a group without durations sums to NULL
        with_duration += durations
        booked_calls += booked_count
    return CallStats.model_validate(
        {
            "from": start.astimezone(UTC),
            "to": end.astimezone(UTC),
            "total": sum(by_status.values()),
            "by_status": by_status,
            "by_direction": by_direction,
            "answered": answered,
            "booked": booked_calls,
            "total_duration_s": total_duration,
            "average_duration_s": round(total_duration / with_duration, 1) if with_duration else None,
        }
    )


@router.get("/{call_sid}", operation_id="calls_get", response_model=CallDetail)
async def get_call(call_sid: CallSid, principal: Reader, db: DbSession) -> CallDetail:
    """One call with its turns in order, its summary and the appointments booked during it."""
    call = await CallRepository(db, principal).by_sid(call_sid)
    turns = await db.scalars(
        TurnRepository(db, principal)
        .query()
        .where(CallTurn.call_id == call.id)
        .order_by(CallTurn.offset_ms, CallTurn.id)
    )
    appointments = await db.scalars(
        AppointmentRepository(db, principal)
        .query()
        .where(Appointment.call_sid == call.call_sid)
        .order_by(Appointment.starts_at, Appointment.id)
    )
    return CallDetail.model_validate(
        {
            **call_fields(call),
            "turns": [TurnOut.model_validate(t, from_attributes=True) for t in turns],
            "appointments": [BookedAppointment.model_validate(a, from_attributes=True) for a in appointments],
        }
    )


@router.get(
    "/{call_sid}/recording",
    operation_id="calls_recording",
    response_class=StreamingResponse,
    responses={
        200: {"content": {MEDIA_TYPE: {}}, "description": "the whole recording (WAV, one channel per leg)"},
        206: {"content": {MEDIA_TYPE: {}}, "description": "the byte range asked for with Range"},
        404: {"description": "no such call, or no recording of it (yet)"},
        416: {"description": "a malformed Range, or one past the end of the file"},
    },
)
async def call_recording(
    call_sid: CallSid,
    principal: Reader,
    db: DbSession,
    request: Request,
    range_header: Annotated[str | None, Header(alias="range", include_in_schema=False)] = None,
) -> StreamingResponse:
    """The call's recording, streamed; seekable with ``Range: bytes=…`` (206 + ``Content-Range``)."""
    call = await CallRepository(db, principal).by_sid(call_sid)
    if call.recording_path is None:
        raise not_found("recording")
    store = open_store(resources_of(request).settings)
    return await recording_response(store, call.recording_path, call.call_sid, range_header)
