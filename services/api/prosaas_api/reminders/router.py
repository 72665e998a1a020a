"""/api/reminders: staff reminders, optionally about a lead. The worker's ``reminders.send_due`` turns a
due reminder into a notification (and an e-mail on the ``email`` channel)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy import func, update

from prosaas_api.auth.permissions import Permission
from prosaas_api.auth.principal import Principal, require
from prosaas_api.errors import field_error
from prosaas_api.ids import QueryId, RowId
from prosaas_api.leads.query import LeadRepository
from prosaas_api.reminders.schemas import (
    ReminderCreate,
    ReminderList,
    ReminderOut,
    ReminderSnooze,
    ReminderStatusName,
)
from prosaas_api.tenancy import TenantRepository
from prosaas_common.leads.writer import LeadWriter
from prosaas_common.models import Lead, Notification, Reminder, ReminderStatus, User
from prosaas_common.web import DbSession, resources_of

router = APIRouter(prefix="/api/reminders", tags=["reminders"])
Staff = Annotated[Principal, Depends(require(Permission.LEADS_WRITE))]


class ReminderRepository(TenantRepository[Reminder]):
    model = Reminder
    label = "reminder"


class MemberRepository(TenantRepository[User]):
    model = User
    label = "user"

    async def check_active(self, field: str, user_id: int) -> None:
        """422 on ``field`` unless ``user_id`` is an active user of this business."""
        found = await self.db.scalar(self.query().where(User.id == user_id, User.is_active.is_(True)))
        if found is None:
            raise field_error(field, "no such active user in this business")


def reminder_out(reminder: Reminder) -> ReminderOut:
    return ReminderOut.model_validate(reminder, from_attributes=True)


async def refreshed(reminder: Reminder, db: DbSession) -> ReminderOut:
    await db.flush()
    await db.refresh(reminder)
    return reminder_out(reminder)


@router.post("", operation_id="reminders_create", status_code=201, response_model=ReminderOut)
async def create_reminder(
    body: ReminderCreate, principal: Staff, db: DbSession, request: Request
) -> ReminderOut:
    """A reminder for the caller or another active user of the business; with a lead, the lead's
    timeline records it."""
    repository = ReminderRepository(db, principal)
    assignee = body.assignee_user_id or principal.user_id
    await MemberRepository(db, principal).check_active("assignee_user_id", assignee)
    lead: Lead | None = None
    if body.lead_id is not None:
        lead = await db.scalar(LeadRepository(db, principal).query().where(Lead.id == body.lead_id))
        if lead is None:
            raise field_error("lead_id", "no such lead in this business")
    reminder = await repository.add(
        Reminder(
            lead_id=body.lead_id,
            assignee_user_id=assignee,
            created_by_user_id=principal.user_id,
            note=body.note,
            due_at=body.due_at,
            channel=body.channel,
            status=ReminderStatus.PENDING.value,
        )
    )
    if lead is not None:
        writer = LeadWriter(
            db,
            repository.business_id,
            actor_user_id=principal.user_id,
            via="api",
            pool=resources_of(request).job_pool,
        )
        await writer.activity(
            lead,
            "reminder_set",
            f"Reminder set for {body.due_at.isoformat()}: {body.note}",
            {"reminder_id": reminder.id, "due_at": body.due_at.isoformat(), "assignee_user_id": assignee},
        )
    return await refreshed(reminder, db)


@router.get("", operation_id="reminders_list", response_model=ReminderList)
async def list_reminders(
    principal: Staff,
    db: DbSession,
    status: ReminderStatusName | None = None,
    assignee_user_id: QueryId | None = None,
    lead_id: QueryId | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> ReminderList:
    """Reminders by due time (soonest first), at most ``limit``."""
    query = ReminderRepository(db, principal).query()
    if status is not None:
        query = query.where(Reminder.status == status)
    if assignee_user_id is not None:
        query = query.where(Reminder.assignee_user_id == assignee_user_id)
    if lead_id is not None:
        query = query.where(Reminder.lead_id == lead_id)
    rows = await db.scalars(query.order_by(Reminder.due_at, Reminder.id).limit(limit))
    return ReminderList(items=[reminder_out(r) for r in rows])


@router.post("/{reminder_id}/complete", operation_id="reminders_complete", response_model=ReminderOut)
async def complete_reminder(reminder_id: RowId, principal: Staff, db: DbSession) -> ReminderOut:
    """Mark done (whether or not it was sent); done reminders are never sent."""
    reminder = await ReminderRepository(db, principal).get(reminder_id, for_update=True)
    if reminder.status != ReminderStatus.DONE:
        reminder.status = ReminderStatus.DONE.value
        reminder.done_at = func.now()
    return await refreshed(reminder, db)


@router.post("/{reminder_id}/snooze", operation_id="reminders_snooze", response_model=ReminderOut)
async def snooze_reminder(
    reminder_id: RowId, body: ReminderSnooze, principal: Staff, db: DbSession
) -> ReminderOut:
    """Back to pending, due again at ``until`` or ``minutes`` from now (its earlier notification stays
    in the inbox; the next one is new)."""
    now = datetime.now(UTC)
    due_at = body.until if body.until is not None else now + timedelta(minutes=body.minutes or 0)
    if due_at <= now:
        raise field_error("until", "must be in the future")
    reminder = await ReminderRepository(db, principal).get(reminder_id, for_update=True)
    reminder.due_at = due_at
    reminder.status = ReminderStatus.PENDING.value
    reminder.sent_at = None
    reminder.done_at = None
    # The notification of the earlier firing stays, but no longer blocks the next one.
    await db.execute(
        update(Notification).where(Notification.reminder_id == reminder.id).values(reminder_id=None)
    )
    return await refreshed(reminder, db)


@router.delete("/{reminder_id}", operation_id="reminders_delete", status_code=204)
async def delete_reminder(reminder_id: RowId, principal: Staff, db: DbSession) -> Response:
    reminder = await ReminderRepository(db, principal).get(reminder_id, for_update=True)
    await db.delete(reminder)
    await db.flush()
    return Response(status_code=204)
