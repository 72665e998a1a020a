"""/api/calendars: a business's calendars (opening hours in its time zone, slot length, buffers,
notice, booking window, closed dates) and /api/calendar/availability: their free slots."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from pydantic import AwareDatetime
from sqlalchemy import delete, exists, select, update

from prosaas_api import audit
from prosaas_api.appointments.schemas import (
    Availability,
    CalendarCreate,
    CalendarOut,
    CalendarUpdate,
    SlotOut,
)
from prosaas_api.auth.permissions import Permission
from prosaas_api.auth.principal import Principal, require
from prosaas_api.errors import conflict, field_error
from prosaas_api.ids import QueryId, RowId
from prosaas_api.tenancy import TenantRepository, not_found
from prosaas_common.models import Appointment, AppointmentStatus, Calendar
from prosaas_common.scheduling.availability import load_calendar_view
from prosaas_common.scheduling.booking import UnknownCalendar
from prosaas_common.web import DbSession

router = APIRouter(tags=["calendars"])
Reader = Annotated[Principal, Depends(require(Permission.APPOINTMENTS_READ))]
Manager = Annotated[Principal, Depends(require(Permission.CALENDARS_MANAGE))]
MAX_RANGE = timedelta(days=62)
MAX_CALENDARS = 50


class CalendarRepository(TenantRepository[Calendar]):
    model = Calendar
    label = "calendar"

    async def make_default(self, calendar: Calendar) -> None:
        """Clear the old default first: one default per business (partial unique index)."""
        await self.db.execute(
            update(Calendar)
            .where(Calendar.business_id == self.business_id, Calendar.id != calendar.id, Calendar.is_default)
            .values(is_default=False)
        )
        calendar.is_default = True
        await self.db.flush()

    async def has_live_appointments(self, calendar: Calendar) -> bool:
        live = select(Appointment.id).where(
            Appointment.calendar_id == calendar.id,
            Appointment.business_id == self.business_id,
            Appointment.status != AppointmentStatus.CANCELLED.value,
        )
        return bool(await self.db.scalar(select(exists(live))))


def calendar_out(calendar: Calendar) -> CalendarOut:
    return CalendarOut.model_validate(calendar, from_attributes=True)


@router.get("/api/calendars", operation_id="calendars_list", response_model=list[CalendarOut])
async def list_calendars(principal: Reader, db: DbSession) -> list[CalendarOut]:
    repository = CalendarRepository(db, principal)
    rows = await db.scalars(
        repository.query().order_by(Calendar.is_default.desc(), Calendar.name, Calendar.id)
    )
    return [calendar_out(c) for c in rows]


@router.post("/api/calendars", operation_id="calendars_create", status_code=201, response_model=CalendarOut)
async def create_calendar(body: CalendarCreate, principal: Manager, db: DbSession) -> CalendarOut:
    repository = CalendarRepository(db, principal)
    count = len(list(await db.scalars(repository.query().with_only_columns(Calendar.id))))
    if count >= MAX_CALENDARS:
        raise conflict(f"a business has at most {MAX_CALENDARS} calendars")
    values = body.model_dump(exclude_none=True, exclude={"is_default"})
    values.setdefault("weekly_hours", {day: [] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")})
    calendar = await repository.add(Calendar(**values))
    if body.is_default:
        await repository.make_default(calendar)
    await db.refresh(calendar)
    await audit.record(db, principal, "calendar.created", "calendar", calendar.id, {"name": calendar.name})
    return calendar_out(calendar)


@router.get("/api/calendars/{calendar_id}", operation_id="calendars_get", response_model=CalendarOut)
async def get_calendar(calendar_id: RowId, principal: Reader, db: DbSession) -> CalendarOut:
    return calendar_out(await CalendarRepository(db, principal).get(calendar_id))


@router.patch("/api/calendars/{calendar_id}", operation_id="calendars_update", response_model=CalendarOut)
async def update_calendar(
    calendar_id: RowId, body: CalendarUpdate, principal: Manager, db: DbSession
) -> CalendarOut:
    repository = CalendarRepository(db, principal)
    calendar = await repository.get(calendar_id, for_update=True)
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    if changes.get("is_default") is False and calendar.is_default:
        raise field_error("is_default", "make another calendar the default instead")
    for key, value in changes.items():
        if key != "is_default":
            setattr(calendar, key, value)
    if changes.get("is_default"):
        await repository.make_default(calendar)
    await db.flush()
    await db.refresh(calendar)
    await audit.record(
        db, principal, "calendar.updated", "calendar", calendar.id, {"fields": sorted(changes)}
    )
    return calendar_out(calendar)


@router.delete(
    "/api/calendars/{calendar_id}",
    operation_id="calendars_delete",
    status_code=204,
    responses={409: {"description": "the default calendar, or one with live appointments"}},
)
async def delete_calendar(calendar_id: RowId, principal: Manager, db: DbSession) -> Response:
    repository = CalendarRepository(db, principal)
    calendar = await repository.get(calendar_id, for_update=True)
    if calendar.is_default:
        raise conflict("the default calendar cannot be deleted; make another one the default first")
    if await repository.has_live_appointments(calendar):
        raise conflict("the calendar has appointments that are not cancelled; cancel or move them first")
    # Cancelled appointments go with it (the foreign key is RESTRICT).
    await db.execute(
        delete(Appointment).where(
            Appointment.calendar_id == calendar.id, Appointment.business_id == repository.business_id
        )
    )
    await db.delete(calendar)
    await db.flush()
    await audit.record(db, principal, "calendar.deleted", "calendar", calendar_id, {"name": calendar.name})
    return Response(status_code=204)


@router.get("/api/calendar/availability", operation_id="calendar_availability", response_model=Availability)
async def availability(
    principal: Reader,
    db: DbSession,
    start: Annotated[AwareDatetime, Query(alias="from", description="ISO 8601 with offset")],
    end: Annotated[AwareDatetime, Query(alias="to", description="ISO 8601 with offset")],
    duration: Annotated[int, Query(ge=5, le=1440, description="minutes")] = 30,
    calendar_id: QueryId | None = None,
) -> Availability:
    """Free slots of ``duration`` minutes starting in ``[from, to)`` (at most 62 days), in UTC."""
    if end <= start:
        raise field_error("to", "must be after from", location="query")
    if end - start > MAX_RANGE:
        raise field_error("to", "the range is at most 62 days", location="query")
    repository = CalendarRepository(db, principal)
    try:
        view = await load_calendar_view(db, repository.business_id, calendar_id, start, end)
    except UnknownCalendar:
        raise not_found("calendar") from None
    slots = view.free_slots(start, end, timedelta(minutes=duration), datetime.now(UTC))
    return Availability(
        calendar_id=view.calendar.id,
        timezone=view.tz.key,
        duration_minutes=duration,
        slots=[SlotOut(starts_at=s.starts_at, ends_at=s.ends_at) for s in slots],
    )
