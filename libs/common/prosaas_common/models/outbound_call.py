"""Bulk outbound calls: one ``outbound_call_runs`` row per run over a selection of leads.

The api writes the run with the lead ids it resolved from the selection (``selection``: the ids, and
the filter when one was used); the worker's ``calls.run_outbound`` walks them in order from ``cursor``,
placing a call per lead within the business's outbound concurrency and counting placed / failed /
skipped. A run is ``running`` until every lead was handled (``completed``) or someone asks it to stop
(``stopping`` → ``stopped`` at the worker's next step). Each call of a run is a ``calls`` row with
``run_id`` and the dedup key ``run:{run_id}:lead:{lead_id}``, so a retried step never calls a lead twice.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Index, Integer, String, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from prosaas_common.db import Base, TimestampMixin, one_of


class RunStatus(StrEnum):
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    COMPLETED = "completed"


RUN_STATUSES = tuple(status.value for status in RunStatus)
FINISHED_RUN_STATUSES = frozenset({RunStatus.STOPPED, RunStatus.COMPLETED})


class OutboundCallRun(TimestampMixin, Base):
    __tablename__ = "outbound_call_runs"
    __table_args__ = (
        CheckConstraint(one_of("status", RUN_STATUSES), name="status_known"),
        Index("ix_outbound_call_runs_business_id_id", "business_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    business_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("businesses.id", ondelete="CASCADE"), nullable=False
    )
    created_by_user_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    status: Mapped[str] = mapped_column(
        String(20), nullable=False, default=RunStatus.RUNNING.value, server_default=RunStatus.RUNNING.value
    )
    # {"lead_ids": [...], "filter": {...} | null}: the leads to call, in order.
    selection: Mapped[dict[str, Any]] = mapped_column(
        JSONB, nullable=False, default=dict, server_default=text("'{}'::jsonb")
    )
    cursor: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    total: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    placed: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    failed: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    skipped: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    # How often the run waited for a free outbound slot: the sequence number of its next job id.
    wakeups: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    @property
    def lead_ids(self) -> list[int]:
        return [int(i) for i in self.selection.get("lead_ids") or []]
