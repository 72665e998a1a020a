"""Jobs that exhausted their tries: name, arguments and error, kept for inspection and re-running."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Integer, String, Text, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from prosaas_common.db import Base


class DeadLetter(Base):
    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    job_name: Mapped[str] = mapped_column(String(100), nullable=False, index=True)
    job_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    queue: Mapped[str | None] = mapped_column(String(50), nullable=True)
    args: Mapped[list[Any]] = mapped_column(JSONB, nullable=False)
    kwargs: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    tries: Mapped[int] = mapped_column(Integer, nullable=False)
    error: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    rerun_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
