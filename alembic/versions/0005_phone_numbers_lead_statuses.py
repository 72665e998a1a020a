"""Business phone numbers (E.164, unique across businesses) and lead statuses.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 09:34:07.194966+00:00
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "business_phone_numbers",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("business_id", sa.BigInteger(), nullable=False),
        sa.Column("e164", sa.String(length=16), nullable=False),
        sa.Column("label", sa.String(length=100), server_default="", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["business_id"],
            ["businesses.id"],
            name=op.f("fk_business_phone_numbers_business_id_businesses"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_business_phone_numbers")),
        sa.UniqueConstraint("e164", name=op.f("uq_business_phone_numbers_e164")),
    )
    op.create_index(
        op.f("ix_business_phone_numbers_business_id"), "business_phone_numbers", ["business_id"], unique=False
    )
    op.create_table(
        "lead_statuses",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("business_id", sa.BigInteger(), nullable=False),
        sa.Column("key", sa.String(length=50), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("color", sa.String(length=7), server_default="#64748b", nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("is_default", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("is_system", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["business_id"],
            ["businesses.id"],
            name=op.f("fk_lead_statuses_business_id_businesses"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lead_statuses")),
        sa.UniqueConstraint("business_id", "key", name=op.f("uq_lead_statuses_business_id_key")),
    )
    op.create_index(op.f("ix_lead_statuses_business_id"), "lead_statuses", ["business_id"], unique=False)
    op.create_index(
        "uq_lead_statuses_one_default",
        "lead_statuses",
        ["business_id"],
        unique=True,
        postgresql_where=sa.text("is_default"),
    )


def downgrade() -> None:
    op.drop_index(
        "uq_lead_statuses_one_default", table_name="lead_statuses", postgresql_where=sa.text("is_default")
    )
    op.drop_index(op.f("ix_lead_statuses_business_id"), table_name="lead_statuses")
    op.drop_table("lead_statuses")
    op.drop_index(op.f("ix_business_phone_numbers_business_id"), table_name="business_phone_numbers")
    op.drop_table("business_phone_numbers")
