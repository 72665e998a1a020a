"""Inbound lead webhooks: up to 5 intake endpoints per business, each with its own secret (stored as
a SHA-256 hash) and target status; receipts make a post with an external id idempotent."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, String, Uuid, func, true
from sqlalchemy.orm import Mapped, mapped_column

from prosaas_common.db import Base, TimestampMixin

MAX_INTAKE_ENDPOINTS = 5


class LeadIntakeEndpoint(TimestampMixin, Base):
    __tablename__ = "lead_intake_endpoints"

    # Public in the URL, so random rather than sequential.
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    business_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("businesses.id", ondelete="CASCADE"), index=True, nullable=False
    )
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    secret_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    target_status_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("lead_statuses.id", ondelete="SET NULL"), nullable=True
    )
    source: Mapped[str] = mapped_column(String(50), nullable=False, server_default="webhook")
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=true())
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class LeadIntakeReceipt(Base):
    __tablename__ = "lead_intake_receipts"

    endpoint_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("lead_intake_endpoints.id", ondelete="CASCADE"), primary_key=True
    )
    external_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    lead_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("leads.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
