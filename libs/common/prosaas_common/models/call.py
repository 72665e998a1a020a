"""Phone calls the AI receptionist takes or makes, and what was said in them.

A ``calls`` row is written when Twilio first tells us about the call (``incoming_call`` /
``outbound_call``; ``call_sid`` is unique, so a retried webhook finds the same row) and updated by the
status callbacks and the media session. ``call_turns`` are saved while the call runs, one per utterance,
so a crash loses at most the turn in progress.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from prosaas_common.db import Base, TimestampMixin, one_of


class CallDirection(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class CallStatus(StrEnum):
    """Twilio's call statuses (``CallStatus`` of its webhooks)."""

    QUEUED = "queued"
    RINGING = "ringing"
    IN_PROGRESS = "in-progress"
    COMPLETED = "completed"
    BUSY = "busy"
    FAILED = "failed"
    NO_ANSWER = "no-answer"
    CANCELED = "canceled"


TERMINAL_CALL_STATUSES = frozenset(
    {CallStatus.COMPLETED, CallStatus.BUSY, CallStatus.FAILED, CallStatus.NO_ANSWER, CallStatus.CANCELED}
)
CALL_STATUSES = tuple(status.value for status in CallStatus)


class Call(TimestampMixin, Base):
    __tablename__ = "calls"
    __table_args__ = (
        CheckConstraint(one_of("status", CALL_STATUSES), name="status_known"),
        CheckConstraint(one_of("direction", [d.value for d in CallDirection]), name="direction_known"),
        Index("ix_calls_business_id_started_at", "business_id", "started_at"),
        Index("ix_calls_lead_id", "lead_id"),
        Index("ix_calls_run_id", "run_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    business_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("businesses.id", ondelete="CASCADE"), nullable=False
    )
    call_sid: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    direction: Mapped[str] = mapped_column(String(10), nullable=False)
    from_number: Mapped[str] = mapped_column(String(32), nullable=False)  # E.164, or "anonymous"
    to_number: Mapped[str] = mapped_column(String(32), nullable=False)
    lead_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("leads.id", ondelete="SET NULL"), nullable=True
    )
    status: Mapped[str] = mapped_column(String(20), nullable=False, server_default=CallStatus.RINGING.value)
    started_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    duration_s: Mapped[int | None] = mapped_column(Integer, nullable=True)
    end_reason: Mapped[str | None] = mapped_column(String(40), nullable=True)
    stream_sid: Mapped[str | None] = mapped_column(String(64), nullable=True)
    provider: Mapped[str | None] = mapped_column(String(20), nullable=True)
    usage: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default=text("'{}'::jsonb"))
    recording_sid: Mapped[str | None] = mapped_column(String(64), nullable=True)
    recording_path: Mapped[str | None] = mapped_column(String(500), nullable=True)
    summary: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Outbound calls: the bulk run that made it, the request's dedup key (``manual:{business}:{key}`` or
    # ``run:{run}:lead:{lead}``) and when the worker asked Twilio to place it (set with a placeholder
    # ``call_sid`` = the answer was lost: the worker looks the call up before placing it again).
    run_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("outbound_call_runs.id", ondelete="SET NULL"), nullable=True
    )
    dedup_key: Mapped[str | None] = mapped_column(String(200), unique=True, nullable=True)
    dialed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class CallTurn(Base):
    __tablename__ = "call_turns"
    __table_args__ = (
        CheckConstraint("speaker IN ('caller', 'agent', 'system')", name="speaker_known"),
        Index("ix_call_turns_call_id_offset_ms", "call_id", "offset_ms"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    call_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("calls.id", ondelete="CASCADE"), nullable=False
    )
    business_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("businesses.id", ondelete="CASCADE"), nullable=False
    )
    speaker: Mapped[str] = mapped_column(String(10), nullable=False)
    text: Mapped[str] = mapped_column(Text, nullable=False)
    offset_ms: Mapped[int] = mapped_column(Integer, nullable=False)  # since the call started
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
