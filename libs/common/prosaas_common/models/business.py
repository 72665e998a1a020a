"""A tenant: the small business whose phone the AI receptionist answers."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Identity, String, true
from sqlalchemy.orm import Mapped, mapped_column

from prosaas_common.db import Base, TimestampMixin


class Business(TimestampMixin, Base):
    __tablename__ = "businesses"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    timezone: Mapped[str] = mapped_column(String(64), nullable=False, server_default="UTC")
    locale: Mapped[str] = mapped_column(String(16), nullable=False, server_default="en")
    # ISO 3166 region for phone numbers written without +country (leads, settings, imports).
    default_region: Mapped[str] = mapped_column(String(2), nullable=False, server_default="US")
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=true())
