"""Outbound calls: bulk runs (``outbound_call_runs``), the run, dedup key and dial time of a call, and the
business's outbound concurrency (``business_settings.max_outbound_calls``).

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-24 09:00:00.000000+00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "outbound_call_runs",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("business_id", sa.BigInteger(), nullable=False),
        sa.Column("created_by_user_id", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(length=20), server_default="running", nullable=False),
        sa.Column(
            "selection",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("cursor", sa.Integer(), server_default="0", nullable=False),
        sa.Column("total", sa.Integer(), server_default="0", nullable=False),
        sa.Column("placed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("failed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("skipped", sa.Integer(), server_default="0", nullable=False),
        sa.Column("wakeups", sa.Integer(), server_default="0", nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "status IN ('running', 'stopping', 'stopped', 'completed')",
            name=op.f("ck_outbound_call_runs_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["business_id"],
            ["businesses.id"],
            name=op.f("fk_outbound_call_runs_business_id_businesses"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["created_by_user_id"],
            ["users.id"],
            name=op.f("fk_outbound_call_runs_created_by_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbound_call_runs")),
    )
    op.create_index(
        "ix_outbound_call_runs_business_id_id", "outbound_call_runs", ["business_id", "id"], unique=False
    )
    op.add_column("calls", sa.Column("run_id", sa.BigInteger(), nullable=True))
    op.add_column("calls", sa.Column("dedup_key", sa.String(length=200), nullable=True))
    op.add_column("calls", sa.Column("dialed_at", sa.DateTime(timezone=True), nullable=True))
    op.create_foreign_key(
        op.f("fk_calls_run_id_outbound_call_runs"),
        "calls",
        "outbound_call_runs",
        ["run_id"],
        ["id"],
        ondelete="SET NULL",
    )
    op.create_unique_constraint(op.f("uq_calls_dedup_key"), "calls", ["dedup_key"])
    op.create_index("ix_calls_run_id", "calls", ["run_id"], unique=False)
    op.add_column(
        "business_settings",
        sa.Column("max_outbound_calls", sa.Integer(), server_default="3", nullable=False),
    )
    op.create_check_constraint(
        op.f("ck_business_settings_max_outbound_calls_range"),
        "business_settings",
        "max_outbound_calls BETWEEN 1 AND 50",
    )


def downgrade() -> None:
    op.drop_constraint(
        op.f("ck_business_settings_max_outbound_calls_range"), "business_settings", type_="check"
    )
    op.drop_column("business_settings", "max_outbound_calls")
    op.drop_index("ix_calls_run_id", table_name="calls")
    op.drop_constraint(op.f("uq_calls_dedup_key"), "calls", type_="unique")
    op.drop_constraint(op.f("fk_calls_run_id_outbound_call_runs"), "calls", type_="foreignkey")
    op.drop_column("calls", "dialed_at")
    op.drop_column("calls", "dedup_key")
    op.drop_column("calls", "run_id")
    op.drop_index("ix_outbound_call_runs_business_id_id", table_name="outbound_call_runs")
    op.drop_table("outbound_call_runs")
