"""Staff reminders and the in-app notifications they turn into.

A reminder is due at ``due_at``; the worker's ``reminders.send_due`` job claims due pending reminders,
writes one notification per reminder (``reminder_id`` is unique, so a retried or concurrent run never
writes a second) and, for the e-mail channel, an outbox e-mail, then marks the reminder sent.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Index, String, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column

from prosaas_common.db import Base, TimestampMixin, one_of


class ReminderStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    DONE = "done"


class ReminderChannel(StrEnum):
    IN_APP = "in_app"
    EMAIL = "email"


REMINDER_STATUSES = tuple(status.value for status in ReminderStatus)
REMINDER_CHANNELS = tuple(channel.value for channel in ReminderChannel)


class Reminder(TimestampMixin, Base):
    __tablename__ = "reminders"
    __table_args__ = (
        CheckConstraint(one_of("status", REMINDER_STATUSES), name="status_known"),
        CheckConstraint(one_of("channel", REMINDER_CHANNELS), name="channel_known"),
        # What the due-reminders job scans: only pending rows, by due time.
        Index("ix_reminders_due_at_pending", "due_at", postgresql_where=text("status = 'pending'")),
        Index("ix_reminders_business_id_due_at", "business_id", "due_at"),
        Index("ix_reminders_lead_id", "lead_id"),
        Index("ix_reminders_assignee_user_id", "assignee_user_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    business_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("businesses.id", ondelete="CASCADE"), nullable=False
    )
    lead_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("leads.id", ondelete="SET NULL"), nullable=True
    )
    assignee_user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    created_by_user_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    note: Mapped[str] = mapped_column(Text, nullable=False)
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    channel: Mapped[str] = mapped_column(
        String(16), nullable=False, server_default=ReminderChannel.IN_APP.value
    )
    status: Mapped[str] = mapped_column(
        String(16), nullable=False, server_default=ReminderStatus.PENDING.value
    )
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Notification(Base):
    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_user_id_id", "user_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    business_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("businesses.id", ondelete="CASCADE"), index=True, nullable=False
    )
    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    kind: Mapped[str] = mapped_column(String(50), nullable=False)
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    link: Mapped[str | None] = mapped_column(String(300), nullable=True)  # an app path, e.g. /leads/12
    # One reminder makes at most one notification.
    reminder_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("reminders.id", ondelete="SET NULL"), unique=True, nullable=True
    )
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
