"""Booking, rescheduling and cancelling appointments, with their consequences: a lead timeline entry
and a domain event (``appointment.created`` / ``.updated`` / ``.cancelled``) in the caller's transaction.

The only hard rule is the database's: the exclusion constraint ``ex_appointments_no_overlap`` refuses
two live appointments of one calendar that overlap. Each write runs in a SAVEPOINT, so a refused one
rolls back alone and the caller's transaction goes on; the refusal becomes :class:`SlotTaken` naming the
appointment in the way. Opening hours are *not* enforced here (staff may book outside them); callers
that must respect them (the phone agent) ask the availability engine first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from prosaas_common.events import JobPool, record_event
from prosaas_common.leads.writer import LeadWriter
from prosaas_common.models import Appointment, AppointmentStatus, Calendar, Lead

EXCLUSION_VIOLATION = "23P01"
CONSTRAINT = "ex_appointments_no_overlap"


class SlotTaken(Exception):
    """The time overlaps a live appointment of the same calendar (the one named, when still found)."""

    def __init__(
        self, starts_at: datetime | None, ends_at: datetime | None, appointment_id: int | None
    ) -> None:
        super().__init__("the time overlaps another appointment of this calendar")
        self.starts_at = starts_at
        self.ends_at = ends_at
        self.appointment_id = appointment_id


class UnknownCalendar(LookupError):
    pass


class UnknownLead(LookupError):
    pass


@dataclass(frozen=True)
class Actor:
    """Who writes: the user (None for the system or the phone agent), the channel, the job pool."""

    user_id: int | None
    pool: JobPool
    via: str = "api"


def appointment_payload(appointment: Appointment) -> dict[str, Any]:
    """The appointment as domain events carry it."""
    return {
        "id": appointment.id,
        "calendar_id": appointment.calendar_id,
        "lead_id": appointment.lead_id,
        "call_sid": appointment.call_sid,
        "title": appointment.title,
        "status": appointment.status,
        "starts_at": appointment.starts_at.isoformat(),
        "ends_at": appointment.ends_at.isoformat(),
    }


def is_overlap(exc: IntegrityError) -> bool:
    orig = exc.orig
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return code == EXCLUSION_VIOLATION or CONSTRAINT in str(orig)


async def clash_of(
    db: AsyncSession, calendar_id: int, starts_at: datetime, ends_at: datetime, exclude_id: int | None
) -> SlotTaken:
    """The refusal naming the live appointment that overlaps (committed, so visible to a new statement)."""
    query = select(Appointment).where(
        Appointment.calendar_id == calendar_id,
        Appointment.status != AppointmentStatus.CANCELLED.value,
        Appointment.starts_at < ends_at,
        Appointment.ends_at > starts_at,
    )
    if exclude_id is not None:
        query = query.where(Appointment.id != exclude_id)
    with db.no_autoflush:
        other = await db.scalar(query.order_by(Appointment.starts_at).limit(1))
    if other is None:
        return SlotTaken(None, None, None)
    return SlotTaken(other.starts_at, other.ends_at, other.id)


async def calendar_of(db: AsyncSession, business_id: int, calendar_id: int | None) -> Calendar:
    """The business's calendar (the default one for None); :class:`UnknownCalendar` otherwise."""
    query = select(Calendar).where(Calendar.business_id == business_id)
    query = (
        query.where(Calendar.id == calendar_id)
        if calendar_id is not None
        else query.where(Calendar.is_default)
    )
    calendar = await db.scalar(query)
    if calendar is None:
        raise UnknownCalendar(calendar_id)
    return calendar


async def lead_of(db: AsyncSession, business_id: int, lead_id: int | None) -> Lead | None:
    if lead_id is None:
        return None
    lead = await db.scalar(select(Lead).where(Lead.business_id == business_id, Lead.id == lead_id))
    if lead is None:
        raise UnknownLead(lead_id)
    return lead


def _span(appointment: Appointment) -> str:
    return f"{appointment.starts_at.isoformat()} to {appointment.ends_at.isoformat()}"


async def _timeline(
    db: AsyncSession,
    business_id: int,
    actor: Actor,
    lead_id: int | None,
    kind: str,
    summary: str,
    appointment: Appointment,
) -> None:
    lead = await lead_of(db, business_id, lead_id) if lead_id is not None else None
    if lead is None:
        return
    writer = LeadWriter(db, business_id, actor_user_id=actor.user_id, via=actor.via, pool=actor.pool)
    await writer.activity(lead, kind, summary, {"appointment_id": appointment.id, "via": actor.via})


async def book_appointment(
    db: AsyncSession,
    business_id: int,
    calendar_id: int | None,
    lead_id: int | None,
    starts_at: datetime,
    duration: timedelta,
    actor_user_id: int | None,
    pool: JobPool,
    call_sid: str | None = None,
    *,
    title: str = "",
    notes: str = "",
    via: str = "api",
) -> Appointment:
    """Insert an appointment (flushes). Raises :class:`SlotTaken`, :class:`UnknownCalendar` (also for
    another business's calendar) or :class:`UnknownLead`; ``ValueError`` for a naive time or a
    non-positive duration."""
    if starts_at.tzinfo is None or duration <= timedelta(0):
        raise ValueError("starts_at must be timezone-aware and the duration positive")
    calendar = await calendar_of(db, business_id, calendar_id)
    lead = await lead_of(db, business_id, lead_id)
    appointment = Appointment(
        business_id=business_id,
        calendar_id=calendar.id,
        lead_id=lead.id if lead else None,
        call_sid=call_sid,
        title=title,
        notes=notes,
        status=AppointmentStatus.SCHEDULED.value,
        starts_at=starts_at,
        ends_at=starts_at + duration,
        created_by_user_id=actor_user_id,
    )
    try:
        async with db.begin_nested():
            db.add(appointment)
            await db.flush()
    except IntegrityError as exc:
        if not is_overlap(exc):
            raise
        raise await clash_of(db, calendar.id, starts_at, starts_at + duration, None) from None
    await db.refresh(appointment)
    actor = Actor(actor_user_id, pool, via)
    await _timeline(
        db,
        business_id,
        actor,
        appointment.lead_id,
        "appointment_booked",
        f"Appointment booked: {_span(appointment)}",
        appointment,
    )
    await record_event(db, pool, business_id, "appointment.created", appointment_payload(appointment))
    return appointment


UPDATABLE = ("title", "notes", "status", "starts_at", "ends_at", "lead_id")


async def update_appointment(
    db: AsyncSession, appointment: Appointment, changes: dict[str, Any], actor: Actor
) -> Appointment:
    """Change any of :data:`UPDATABLE` (flushes). Moving the times reschedules (timeline
    ``appointment_rescheduled``); the status ``cancelled`` frees the slot (``appointment_cancelled``,
    event ``appointment.cancelled``); other changes emit ``appointment.updated``. Raises
    :class:`SlotTaken` / :class:`UnknownLead`."""
    unknown = set(changes) - set(UPDATABLE)
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    business_id = appointment.business_id
    if "lead_id" in changes:
        await lead_of(db, business_id, changes["lead_id"])
    starts_at = changes.get("starts_at", appointment.starts_at)
    ends_at = changes.get("ends_at", appointment.ends_at)
    if starts_at.tzinfo is None or ends_at.tzinfo is None or ends_at <= starts_at:
        raise ValueError("the appointment must end after it starts (timezone-aware times)")
    moved = (starts_at, ends_at) != (appointment.starts_at, appointment.ends_at)
    was_cancelled = appointment.status == AppointmentStatus.CANCELLED.value
    changed = {k: v for k, v in changes.items() if getattr(appointment, k) != v}
    if not changed:
        return appointment
    calendar_id, appointment_id = (
        appointment.calendar_id,
        appointment.id,
    )  # expired if the savepoint rolls back
    try:
        async with db.begin_nested():
            for key, value in changed.items():
                setattr(appointment, key, value)
            await db.flush()
    except IntegrityError as exc:
        if not is_overlap(exc):
            raise
        raise await clash_of(db, calendar_id, starts_at, ends_at, appointment_id) from None
    await db.refresh(appointment)
    cancelled = appointment.status == AppointmentStatus.CANCELLED.value and not was_cancelled
    if cancelled:
        kind, summary, event = "appointment_cancelled", "Appointment cancelled", "appointment.cancelled"
    elif moved:
        kind, summary, event = "appointment_rescheduled", "Appointment rescheduled", "appointment.updated"
    else:
        kind, summary, event = "appointment_updated", "Appointment updated", "appointment.updated"
    await _timeline(
        db, business_id, actor, appointment.lead_id, kind, f"{summary}: {_span(appointment)}", appointment
    )
    payload = {**appointment_payload(appointment), "changed": sorted(changed)}
    await record_event(db, actor.pool, business_id, event, payload)
    return appointment


async def cancel_appointment(db: AsyncSession, appointment: Appointment, actor: Actor) -> Appointment:
    """Cancel (frees the slot); cancelling a cancelled appointment changes nothing."""
    return await update_appointment(db, appointment, {"status": AppointmentStatus.CANCELLED.value}, actor)
