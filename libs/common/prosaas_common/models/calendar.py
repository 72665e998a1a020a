"""Calendars and appointments. Times are stored in UTC (timestamptz); opening hours are wall-clock times
in the business's IANA time zone, so availability stays right across DST changes.

Double booking is impossible by construction: an exclusion constraint (btree_gist) refuses two live
(not cancelled) appointments of one calendar whose ``[starts_at, ends_at)`` ranges overlap.
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
    false,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB, ExcludeConstraint
from sqlalchemy.orm import Mapped, mapped_column

from prosaas_common.db import Base, TimestampMixin, one_of


class AppointmentStatus(StrEnum):
    SCHEDULED = "scheduled"
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"
    COMPLETED = "completed"
    NO_SHOW = "no_show"


APPOINTMENT_STATUSES = tuple(status.value for status in AppointmentStatus)

# Monday-first weekday keys of ``weekly_hours``: {"mon": [["09:00", "12:00"], ["13:00", "17:00"]], ...}
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_WEEKLY_HOURS: dict[str, list[list[str]]] = {
    day: ([["09:00", "17:00"]] if day not in ("sat", "sun") else []) for day in WEEKDAYS
}


class Calendar(TimestampMixin, Base):
    __tablename__ = "calendars"
    __table_args__ = (
        Index("uq_calendars_one_default", "business_id", unique=True, postgresql_where=text("is_default")),
        CheckConstraint("slot_minutes BETWEEN 5 AND 480", name="slot_minutes_range"),
        CheckConstraint("buffer_minutes BETWEEN 0 AND 240", name="buffer_minutes_range"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    business_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("businesses.id", ondelete="CASCADE"), index=True, nullable=False
    )
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    is_default: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=false())
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=true())
    slot_minutes: Mapped[int] = mapped_column(Integer, nullable=False, server_default="30")
    buffer_minutes: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    booking_window_days: Mapped[int] = mapped_column(Integer, nullable=False, server_default="30")
    min_notice_minutes: Mapped[int] = mapped_column(Integer, nullable=False, server_default="60")
    weekly_hours: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    # ISO dates ("2026-12-25") the calendar is closed, in the business's time zone.
    excluded_dates: Mapped[list[str]] = mapped_column(
        JSONB, nullable=False, server_default=text("'[]'::jsonb")
    )


class Appointment(TimestampMixin, Base):
    __tablename__ = "appointments"
    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        CheckConstraint(one_of("status", APPOINTMENT_STATUSES), name="status_known"),
        ExcludeConstraint(
            ("calendar_id", "="),
            (text("tstzrange(starts_at, ends_at, '[)')"), "&&"),
            name="ex_appointments_no_overlap",
            using="gist",
            where=text("status <> 'cancelled'"),
        ),
        Index("ix_appointments_business_id_starts_at", "business_id", "starts_at"),
        Index("ix_appointments_lead_id", "lead_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    business_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("businesses.id", ondelete="CASCADE"), nullable=False
    )
    calendar_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("calendars.id", ondelete="RESTRICT"), nullable=False
    )
    lead_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("leads.id", ondelete="SET NULL"), nullable=True
    )
    call_sid: Mapped[str | None] = mapped_column(String(64), nullable=True)  # the call that booked it
    title: Mapped[str] = mapped_column(String(200), nullable=False, server_default="")
    notes: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    status: Mapped[str] = mapped_column(
        String(20), nullable=False, server_default=AppointmentStatus.SCHEDULED.value
    )
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    created_by_user_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
