"""Messages to leads (SMS now, WhatsApp later) and the rules that plan them.

* :class:`MessageAutomation`: per business, a template sent at an offset from an appointment (on booking,
  N minutes before its start, N minutes after its end).
* :class:`FollowupRule`: per lead status, steps (delay after entering the status, template); leaving the
  status cancels the steps not yet sent.
* :class:`OutboundMessage`: one planned or sent message. ``dedup_key`` is unique, so a re-planned,
  retried or duplicated job never creates, and so never sends, a second copy.

A message moves ``scheduled`` → ``sending`` (claimed by the worker, in flight) → ``sent`` (accepted by
the provider) → ``delivered`` / ``undelivered`` (provider callbacks), or ends ``failed`` / ``cancelled``.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from prosaas_common.db import Base, TimestampMixin, one_of


class MessageChannelName(StrEnum):
    SMS = "sms"
    WHATSAPP = "whatsapp"


class MessageStatus(StrEnum):
    SCHEDULED = "scheduled"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    CANCELLED = "cancelled"


class AutomationTrigger(StrEnum):
    BOOKED = "booked"  # offset after the appointment was booked (0 = right away)
    BEFORE_START = "before_start"  # offset before the appointment starts
    AFTER_END = "after_end"  # offset after the appointment ends


MESSAGE_STATUSES = tuple(status.value for status in MessageStatus)
CHANNELS = tuple(channel.value for channel in MessageChannelName)
TRIGGERS = tuple(trigger.value for trigger in AutomationTrigger)
MAX_TEMPLATE_LENGTH = 1600  # ten SMS segments
MAX_FOLLOWUP_STEPS = 10


class MessageAutomation(TimestampMixin, Base):
    __tablename__ = "message_automations"
    __table_args__ = (
        CheckConstraint(one_of("trigger", TRIGGERS), name="trigger_known"),
        CheckConstraint(one_of("channel", CHANNELS), name="channel_known"),
        CheckConstraint("offset_minutes >= 0", name="offset_not_negative"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    business_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("businesses.id", ondelete="CASCADE"), index=True, nullable=False
    )
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    trigger: Mapped[str] = mapped_column(String(20), nullable=False)
    offset_minutes: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    channel: Mapped[str] = mapped_column(
        String(16), nullable=False, server_default=MessageChannelName.SMS.value
    )
    template: Mapped[str] = mapped_column(Text, nullable=False)
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=true())


class FollowupRule(TimestampMixin, Base):
    __tablename__ = "followup_rules"
    __table_args__ = (CheckConstraint(one_of("channel", CHANNELS), name="channel_known"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    business_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("businesses.id", ondelete="CASCADE"), index=True, nullable=False
    )
    status_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("lead_statuses.id", ondelete="CASCADE"), index=True, nullable=False
    )
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    channel: Mapped[str] = mapped_column(
        String(16), nullable=False, server_default=MessageChannelName.SMS.value
    )
    # [{"delay_minutes": int, "template": str}, ...], delays after entering the status, strictly increasing.
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, nullable=False)
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=true())


class OutboundMessage(TimestampMixin, Base):
    __tablename__ = "outbound_messages"
    __table_args__ = (
        CheckConstraint(one_of("status", MESSAGE_STATUSES), name="status_known"),
        CheckConstraint(one_of("channel", CHANNELS), name="channel_known"),
        Index("ix_outbound_messages_due", "send_at", postgresql_where=text("status = 'scheduled'")),
        Index("ix_outbound_messages_in_flight", "claimed_at", postgresql_where=text("status = 'sending'")),
        Index("ix_outbound_messages_business_id_id", "business_id", "id"),
        Index("ix_outbound_messages_lead_id", "lead_id"),
        Index("ix_outbound_messages_appointment_id", "appointment_id"),
        Index("ix_outbound_messages_provider_sid", "provider_sid", unique=True),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    business_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("businesses.id", ondelete="CASCADE"), nullable=False
    )
    dedup_key: Mapped[str] = mapped_column(String(200), unique=True, nullable=False)
    channel: Mapped[str] = mapped_column(
        String(16), nullable=False, server_default=MessageChannelName.SMS.value
    )
    to_number: Mapped[str] = mapped_column(String(16), nullable=False)  # E.164
    from_number: Mapped[str | None] = mapped_column(String(16), nullable=True)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str] = mapped_column(
        String(16), nullable=False, server_default=MessageStatus.SCHEDULED.value
    )
    send_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    provider_sid: Mapped[str | None] = mapped_column(String(64), nullable=True)
    provider_status: Mapped[str | None] = mapped_column(String(32), nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    # What planned it (all optional: a one-off message has none).
    lead_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("leads.id", ondelete="SET NULL"), nullable=True
    )
    appointment_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("appointments.id", ondelete="SET NULL"), nullable=True
    )
    automation_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("message_automations.id", ondelete="SET NULL"), nullable=True
    )
    followup_rule_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("followup_rules.id", ondelete="SET NULL"), nullable=True
    )
    followup_step: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_by_user_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
