"""Per-business settings: the AI agent, the booking policy, outbound webhooks and call limits.

One row per business, created with it. The webhook signing secret is kept (it signs every outbound
webhook) but never read back through the API: it is shown once, when rotated.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Integer, String, Text, false, true
from sqlalchemy.orm import Mapped, mapped_column

from prosaas_common.db import Base, TimestampMixin


class BusinessSettings(TimestampMixin, Base):
    __tablename__ = "business_settings"
    __table_args__ = (
        CheckConstraint("max_outbound_calls BETWEEN 1 AND 50", name="max_outbound_calls_range"),
    )

    business_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("businesses.id", ondelete="CASCADE"), primary_key=True
    )
    # AI agent
    ai_provider: Mapped[str] = mapped_column(String(20), nullable=False, server_default="auto")
    ai_voice: Mapped[str] = mapped_column(String(50), nullable=False, server_default="alloy")
    ai_language: Mapped[str] = mapped_column(String(16), nullable=False, server_default="en")
    system_prompt: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    greeting: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    call_goal: Mapped[str] = mapped_column(String(30), nullable=False, server_default="book_appointment")
    silence_timeout_s: Mapped[int] = mapped_column(Integer, nullable=False, server_default="8")
    silence_prompts_before_hangup: Mapped[int] = mapped_column(Integer, nullable=False, server_default="2")
    max_call_length_s: Mapped[int] = mapped_column(Integer, nullable=False, server_default="600")
    max_concurrent_calls: Mapped[int] = mapped_column(Integer, nullable=False, server_default="5")
    # Outbound calls of the business live at once (bulk runs and single calls wait for a free one).
    max_outbound_calls: Mapped[int] = mapped_column(Integer, nullable=False, server_default="3")
    recording_enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=false())
    transfer_number: Mapped[str | None] = mapped_column(String(16), nullable=True)  # E.164
    # Booking policy (used by appointments)
    booking_enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=true())
    appointment_duration_min: Mapped[int] = mapped_column(Integer, nullable=False, server_default="30")
    min_notice_min: Mapped[int] = mapped_column(Integer, nullable=False, server_default="60")
    booking_window_days: Mapped[int] = mapped_column(Integer, nullable=False, server_default="30")
    cancellation_notice_h: Mapped[int] = mapped_column(Integer, nullable=False, server_default="24")
    require_email: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=false())
    # Outbound webhooks
    webhook_url: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    call_completed_webhook_url: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    lead_status_webhook_url: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    webhook_secret: Mapped[str | None] = mapped_column(String(100), nullable=True)
    # E-mail to leads and staff: the From display name (the business name when unset).
    email_from_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
