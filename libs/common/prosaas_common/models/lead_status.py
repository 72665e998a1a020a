"""Lead statuses of a business (the kanban columns): ordered, one default, system ones protected."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint, false, text
from sqlalchemy.orm import Mapped, mapped_column

from prosaas_common.db import Base, TimestampMixin


class LeadStatus(TimestampMixin, Base):
    __tablename__ = "lead_statuses"
    __table_args__ = (
        UniqueConstraint("business_id", "key"),
        # At most one default status per business.
        Index(
            "uq_lead_statuses_one_default",
            "business_id",
            unique=True,
            postgresql_where=text("is_default"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    business_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("businesses.id", ondelete="CASCADE"), index=True, nullable=False
    )
    key: Mapped[str] = mapped_column(String(50), nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    color: Mapped[str] = mapped_column(String(7), nullable=False, server_default="#64748b")
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    is_default: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=false())
    # System statuses (new, won, lost …) cannot be deleted while leads use them.
    is_system: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=false())


# Created with every business, in kanban order; "new" is where leads land by default.
DEFAULT_LEAD_STATUSES: tuple[tuple[str, str, str, bool], ...] = (
    ("new", "New", "#3b82f6", True),
    ("contacted", "Contacted", "#f59e0b", False),
    ("qualified", "Qualified", "#8b5cf6", False),
    ("won", "Won", "#10b981", False),
    ("lost", "Lost", "#ef4444", False),
)
