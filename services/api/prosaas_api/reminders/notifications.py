"""/api/notifications: the caller's own in-app notifications within the business (another user's
notification answers 404 like another business's)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy import Select, func, select, update

from prosaas_api.auth.permissions import Permission
from prosaas_api.auth.principal import Principal, require
from prosaas_api.ids import QueryId, RowId
from prosaas_api.reminders.schemas import NotificationOut, NotificationPage, ReadAll
from prosaas_api.tenancy import TenantRepository
from prosaas_common.models import Notification
from prosaas_common.web import DbSession

router = APIRouter(prefix="/api/notifications", tags=["notifications"])
Member = Annotated[Principal, Depends(require(Permission.BUSINESS_READ))]


class NotificationRepository(TenantRepository[Notification]):
    """The principal's notifications in the business they act for."""

    model = Notification
    label = "notification"

    def query(self) -> Select[Notification]:
        return super().query().where(Notification.user_id == self.principal.user_id)

    async def unread_count(self) -> int:
        unread = self.query().where(Notification.read_at.is_(None)).subquery()
        return int(await self.db.scalar(select(func.count()).select_from(unread)) or 0)

    async def mark_all_read(self) -> int:
        result = await self.db.execute(
            update(Notification)
            .where(
                Notification.business_id == self.business_id,
                Notification.user_id == self.principal.user_id,
                Notification.read_at.is_(None),
            )
            .values(read_at=func.now())
            .returning(Notification.id)
        )
        return len(result.all())


def notification_out(notification: Notification) -> NotificationOut:
    return NotificationOut.model_validate(notification, from_attributes=True)


@router.get("", operation_id="notifications_list", response_model=NotificationPage)
async def list_notifications(
    principal: Member,
    db: DbSession,
    unread: Annotated[bool | None, Query(description="only unread (true) or only read (false)")] = None,
    before: QueryId | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> NotificationPage:
    """Newest first, keyset pages (pass ``next_before`` as ``before``); ``unread_count`` counts all."""
    repository = NotificationRepository(db, principal)
    query = repository.query()
    if unread is not None:
        query = query.where(Notification.read_at.is_(None) if unread else Notification.read_at.is_not(None))
    rows, next_before = await repository.newest_first(query, before, limit)
    return NotificationPage(
        items=[notification_out(n) for n in rows],
        unread_count=await repository.unread_count(),
        next_before=next_before,
    )


@router.post("/read-all", operation_id="notifications_read_all", response_model=ReadAll)
async def read_all(principal: Member, db: DbSession) -> ReadAll:
    return ReadAll(marked=await NotificationRepository(db, principal).mark_all_read())


@router.post("/{notification_id}/read", operation_id="notifications_read", response_model=NotificationOut)
async def read_notification(notification_id: RowId, principal: Member, db: DbSession) -> NotificationOut:
    notification = await NotificationRepository(db, principal).get(notification_id, for_update=True)
    if notification.read_at is None:
        notification.read_at = func.now()
        await db.flush()
        await db.refresh(notification)
    return notification_out(notification)
