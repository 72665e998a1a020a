"""People who sign in: platform staff (no business) and the staff of one business."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    String,
    func,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column

from prosaas_common.db import Base, TimestampMixin, one_of


class UserRole(StrEnum):
    SYSTEM_ADMIN = "system_admin"
    OWNER = "owner"
    ADMIN = "admin"
    AGENT = "agent"


ROLES = tuple(role.value for role in UserRole)


class User(TimestampMixin, Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(one_of("role", ROLES), name="role_known"),
        # Platform staff belong to no business; everyone else belongs to exactly one.
        CheckConstraint("(role = 'system_admin') = (business_id IS NULL)", name="role_matches_business"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    business_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("businesses.id", ondelete="CASCADE"), index=True, nullable=True
    )
    email: Mapped[str] = mapped_column(String(320), nullable=False)
    full_name: Mapped[str] = mapped_column(String(200), nullable=False, server_default="")
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    role: Mapped[str] = mapped_column(String(32), nullable=False)
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=true())
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


# One account per e-mail address, whatever its capitalisation.
Index("uq_users_email_lower", func.lower(User.email), unique=True)
