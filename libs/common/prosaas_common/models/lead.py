"""The leads CRM: leads, their notes, status history and activity timeline."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Computed,
    DateTime,
    Float,
    ForeignKey,
    Index,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from prosaas_common.db import Base, TimestampMixin

# Lower-cased text the free-text search runs over (trigram GIN index): name, phone (E.164 with and
# without "+"), e-mail.
SEARCH_EXPRESSION = (
    "lower(coalesce(first_name, '') || ' ' || coalesce(last_name, '') || ' ' || coalesce(phone, '') "
    "|| ' ' || coalesce(email, '') || ' ' || coalesce(company, ''))"
)


class Lead(TimestampMixin, Base):
    __tablename__ = "leads"
    __table_args__ = (
        # One lead per phone per business: a repeated phone updates the lead, never duplicates it.
        Index("uq_leads_business_id_phone", "business_id", "phone", unique=True),
        # Kanban columns in order; also the default list order within a status.
        Index("ix_leads_business_id_status_id_rank", "business_id", "status_id", "rank", "id"),
        # First pages of the list, newest first, and keyset pages after them.
        Index("ix_leads_business_id_created_at_id", "business_id", "created_at", "id"),
        Index("ix_leads_business_id_updated_at_id", "business_id", "updated_at", "id"),
        Index("ix_leads_tags", "tags", postgresql_using="gin"),
        Index(
            "ix_leads_search_trgm",
            "search_text",
            postgresql_using="gin",
            postgresql_ops={"search_text": "gin_trgm_ops"},
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    business_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("businesses.id", ondelete="CASCADE"), nullable=False
    )
    status_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("lead_statuses.id", ondelete="RESTRICT"), nullable=False
    )
    # Order within the kanban column: ascending; a move takes a value between its new neighbours.
    rank: Mapped[float] = mapped_column(Float, nullable=False)
    first_name: Mapped[str] = mapped_column(String(100), nullable=False, server_default="")
    last_name: Mapped[str] = mapped_column(String(100), nullable=False, server_default="")
    phone: Mapped[str | None] = mapped_column(String(16), nullable=True)  # E.164
    email: Mapped[str | None] = mapped_column(String(320), nullable=True)  # lower-cased
    company: Mapped[str] = mapped_column(String(200), nullable=False, server_default="")
    source: Mapped[str] = mapped_column(String(50), nullable=False, server_default="manual")
    owner_user_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="SET NULL"), index=True, nullable=True
    )
    tags: Mapped[list[str]] = mapped_column(
        ARRAY(String(50)), nullable=False, server_default=text("'{}'::varchar[]")
    )
    reason: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    fields: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default=text("'{}'::jsonb"))
    status_changed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    search_text: Mapped[str] = mapped_column(Text, Computed(SEARCH_EXPRESSION, persisted=True))

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class LeadNote(TimestampMixin, Base):
    __tablename__ = "lead_notes"
    __table_args__ = (Index("ix_lead_notes_lead_id_id", "lead_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    business_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("businesses.id", ondelete="CASCADE"), index=True, nullable=False
    )
    lead_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("leads.id", ondelete="CASCADE"), nullable=False
    )
    author_user_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    body: Mapped[str] = mapped_column(Text, nullable=False)


class LeadStatusChange(Base):
    """Status history: every change of a lead's status, who made it and through what."""

    __tablename__ = "lead_status_changes"
    __table_args__ = (Index("ix_lead_status_changes_lead_id_id", "lead_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    business_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("businesses.id", ondelete="CASCADE"), index=True, nullable=False
    )
    lead_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("leads.id", ondelete="CASCADE"), nullable=False
    )
    from_status_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("lead_statuses.id", ondelete="SET NULL"), nullable=True
    )
    to_status_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("lead_statuses.id", ondelete="SET NULL"), nullable=True
    )
    from_status_key: Mapped[str | None] = mapped_column(String(50), nullable=True)
    to_status_key: Mapped[str] = mapped_column(String(50), nullable=False)
    actor_user_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    via: Mapped[str] = mapped_column(String(30), nullable=False)  # api, kanban, bulk, import, webhook, call
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )


class LeadActivity(Base):
    """One entry of a lead's timeline (created, status changes, notes; later calls, messages,
    appointments), newest first by id."""

    __tablename__ = "lead_activities"
    __table_args__ = (Index("ix_lead_activities_lead_id_id", "lead_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    business_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("businesses.id", ondelete="CASCADE"), index=True, nullable=False
    )
    lead_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("leads.id", ondelete="CASCADE"), nullable=False
    )
    kind: Mapped[str] = mapped_column(String(40), nullable=False)
    actor_user_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    summary: Mapped[str] = mapped_column(String(500), nullable=False)
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default=text("'{}'::jsonb"))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
