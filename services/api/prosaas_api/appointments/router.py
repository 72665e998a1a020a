"""/api/appointments: list, book, read, reschedule or change status, cancel.

Bookings go through :mod:`prosaas_common.scheduling.booking`, the same code the phone agent uses; the
database's exclusion constraint is the only hard rule (staff may book outside opening hours), and a
clash answers 409 naming the appointment in the way.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import AwareDatetime
from sqlalchemy import tuple_

from prosaas_api.appointments.schemas import (
    AppointmentCreate,
    AppointmentOut,
    AppointmentPage,
    AppointmentStatusName,
    AppointmentUpdate,
    Clash,
)
from prosaas_api.auth.permissions import Permission
from prosaas_api.auth.principal import Principal, require
from prosaas_api.errors import conflict, field_error
from prosaas_api.ids import MAX_ROW_ID, QueryId, RowId
from prosaas_api.tenancy import TenantRepository
from prosaas_common.models import Appointment
from prosaas_common.scheduling.booking import (
    Actor,
    SlotTaken,
    UnknownCalendar,
    UnknownLead,
    book_appointment,
    cancel_appointment,
    update_appointment,
)
from prosaas_common.web import DbSession, resources_of

router = APIRouter(prefix="/api/appointments", tags=["appointments"])
Reader = Annotated[Principal, Depends(require(Permission.APPOINTMENTS_READ))]
Writer = Annotated[Principal, Depends(require(Permission.APPOINTMENTS_WRITE))]
CLASH_RESPONSE: dict[int | str, dict[str, Any]] = {
    409: {
        "description": "the time overlaps a live appointment: "
        '{"message", "clash": {starts_at, ends_at, appointment_id}}'
    }
}


class AppointmentRepository(TenantRepository[Appointment]):
    model = Appointment
    label = "appointment"


def appointment_out(appointment: Appointment) -> AppointmentOut:
    return AppointmentOut.model_validate(appointment, from_attributes=True)


def slot_taken(exc: SlotTaken) -> Exception:
    clash = Clash(starts_at=exc.starts_at, ends_at=exc.ends_at, appointment_id=exc.appointment_id)
    return conflict(
        "the time overlaps another appointment of this calendar", clash=clash.model_dump(mode="json")
    )


def actor_of(request: Request, principal: Principal) -> Actor:
    return Actor(principal.user_id, resources_of(request).job_pool, "api")


def encode_cursor(appointment: Appointment) -> str:
    return f"{appointment.starts_at.isoformat()}~{appointment.id}"


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        when, _, ident = cursor.partition("~")
        starts_at, appointment_id = datetime.fromisoformat(when), int(ident)
        if starts_at.tzinfo is None or not 0 < appointment_id <= MAX_ROW_ID:
            raise ValueError
    except ValueError:
        raise field_error("cursor", "not a cursor of this list", location="query") from None
    return starts_at, appointment_id


@router.get("", operation_id="appointments_list", response_model=AppointmentPage)
async def list_appointments(
    principal: Reader,
    db: DbSession,
    start: Annotated[AwareDatetime | None, Query(alias="from", description="starting at or after")] = None,
    end: Annotated[AwareDatetime | None, Query(alias="to", description="starting before")] = None,
    calendar_id: QueryId | None = None,
    lead_id: QueryId | None = None,
    status: Annotated[list[AppointmentStatusName] | None, Query()] = None,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AppointmentPage:
    """Appointments by start time (then id), keyset pages of ``limit``."""
    query = AppointmentRepository(db, principal).query()
    if start is not None:
        query = query.where(Appointment.starts_at >= start)
    if end is not None:
        query = query.where(Appointment.starts_at < end)
    if calendar_id is not None:
        query = query.where(Appointment.calendar_id == calendar_id)
    if lead_id is not None:
        query = query.where(Appointment.lead_id == lead_id)
    if status:
        query = query.where(Appointment.status.in_(status))
    if cursor is not None:
        query = query.where(tuple_(Appointment.starts_at, Appointment.id) > tuple_(*decode_cursor(cursor)))
    rows = list(await db.scalars(query.order_by(Appointment.starts_at, Appointment.id).limit(limit + 1)))
    page = rows[:limit]
    return AppointmentPage(
        items=[appointment_out(a) for a in page],
        next_cursor=encode_cursor(page[-1]) if len(rows) > limit else None,
    )


@router.post(
    "",
    operation_id="appointments_create",
    status_code=201,
    response_model=AppointmentOut,
    responses=CLASH_RESPONSE,
)
async def create_appointment(
    body: AppointmentCreate, principal: Writer, db: DbSession, request: Request
) -> AppointmentOut:
    repository = AppointmentRepository(db, principal)
    duration = body.duration()
    try:
        appointment = await book_appointment(
            db,
            repository.business_id,
            body.calendar_id,
            body.lead_id,
            body.starts_at,
            duration,
            principal.user_id,
            resources_of(request).job_pool,
            title=body.title,
            notes=body.notes,
        )
    except UnknownCalendar:
        raise field_error("calendar_id", "no such calendar in this business") from None
    except UnknownLead:
        raise field_error("lead_id", "no such lead in this business") from None
    except SlotTaken as exc:
        raise slot_taken(exc) from None
    return appointment_out(appointment)


@router.get("/{appointment_id}", operation_id="appointments_get", response_model=AppointmentOut)
async def get_appointment(appointment_id: RowId, principal: Reader, db: DbSession) -> AppointmentOut:
    return appointment_out(await AppointmentRepository(db, principal).get(appointment_id))


@router.patch(
    "/{appointment_id}",
    operation_id="appointments_update",
    response_model=AppointmentOut,
    responses=CLASH_RESPONSE,
)
async def update(
    appointment_id: RowId, body: AppointmentUpdate, principal: Writer, db: DbSession, request: Request
) -> AppointmentOut:
    """Reschedule (``starts_at`` and ``duration_minutes`` or ``ends_at``; moving the start alone keeps the
    duration), relink the lead, retitle, or set the status (``cancelled`` frees the slot)."""
    appointment = await AppointmentRepository(db, principal).get(appointment_id, for_update=True)
    sent = body.model_fields_set
    changes: dict[str, Any] = {}
    for key in ("title", "notes", "status"):
        if key in sent and getattr(body, key) is not None:
            changes[key] = getattr(body, key)
    if "lead_id" in sent:
        changes["lead_id"] = body.lead_id
    starts_at = body.starts_at or appointment.starts_at
    if body.ends_at is not None:
        ends_at = body.ends_at
    elif body.duration_minutes is not None:
        ends_at = starts_at + timedelta(minutes=body.duration_minutes)
    else:
        ends_at = starts_at + (appointment.ends_at - appointment.starts_at)
    if ends_at <= starts_at:
        raise field_error("ends_at", "must be after starts_at")
    if ends_at - starts_at > timedelta(hours=24):
        raise field_error("ends_at", "an appointment lasts at most 24 hours")
    changes["starts_at"], changes["ends_at"] = starts_at, ends_at
    try:
        await update_appointment(db, appointment, changes, actor_of(request, principal))
    except UnknownLead:
        raise field_error("lead_id", "no such lead in this business") from None
    except SlotTaken as exc:
        raise slot_taken(exc) from None
    return appointment_out(appointment)


@router.post(
    "/{appointment_id}/cancel",
    operation_id="appointments_cancel",
    response_model=AppointmentOut,
)
async def cancel(appointment_id: RowId, principal: Writer, db: DbSession, request: Request) -> AppointmentOut:
    """Cancel; the slot is free again at once. Cancelling twice changes nothing."""
    appointment = await AppointmentRepository(db, principal).get(appointment_id, for_update=True)
    await cancel_appointment(db, appointment, actor_of(request, principal))
    return appointment_out(appointment)
