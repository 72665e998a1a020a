"""Telling a business's staff that something needs them: an in-app notification and an e-mail (the
``notification`` template, From the business's sender name) for each active owner and admin.

Each (notice, user) pair is sent at most once: the outbox row's dedup key ``{dedup_key}:user:{id}`` is
written first, and only a user whose row was new gets the notification and the delivery job, so a
retried or repeated job path notifies nobody twice. E-mails are enqueued after the caller's commit.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from prosaas_common.email_templates import add_templated_email
from prosaas_common.logging import get_logger
from prosaas_common.models import Notification, User, UserRole
from prosaas_worker.context import JobContext
from prosaas_worker.jobs.email import enqueue_delivery

STAFF_ROLES = (UserRole.OWNER.value, UserRole.ADMIN.value)
TITLE_MAX = 200  # notifications.title

log = get_logger("prosaas.worker.notify")


@dataclass(frozen=True)
class StaffNotice:
    """What to tell: ``kind`` names it in the inbox, ``link`` is an app path (e.g. /settings/webhooks)."""

    kind: str
    title: str
    body: str
    link: str | None = None


async def staff_to_notify(db: AsyncSession, business_id: int) -> list[User]:
    """The active owners and admins of the business, oldest account first."""
    query = (
        select(User)
        .where(User.business_id == business_id, User.is_active, User.role.in_(STAFF_ROLES))
        .order_by(User.id)
    )
    return list(await db.scalars(query))


async def notify_staff(
    db: AsyncSession, ctx: JobContext, business_id: int, notice: StaffNotice, dedup_key: str
) -> int:
    """Notify each active owner and admin not yet notified under ``dedup_key``; how many were."""
    title = notice.title[:TITLE_MAX]
    notified = 0
    for user in await staff_to_notify(db, business_id):
        email_id = await add_templated_email(
            db,
            business_id=business_id,
            to_address=user.email,
            dedup_key=f"{dedup_key}:user:{user.id}",
            template="notification",
            context={"title": title, "body": notice.body, "link": notice.link},
        )
        if email_id is None:
            continue  # told already
        db.add(
            Notification(
                business_id=business_id,
                user_id=user.id,
                kind=notice.kind,
                title=title,
                body=notice.body,
                link=notice.link,
            )
        )
        enqueue_delivery(db, ctx, email_id)
        notified += 1
    await db.flush()
    log.debug("notify.staff", business_id=business_id, kind=notice.kind, notified=notified)
    return notified
