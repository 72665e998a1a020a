"""Leads CRM (leads, notes, status history, timeline, imports), business settings, lead intake
endpoints, background jobs and domain events.

Needs the pg_trgm extension (trusted since PostgreSQL 13: the database owner may create it) for the
trigram index behind lead search.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 10:41:31.559638+00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_table(
        "business_settings",
        sa.Column("business_id", sa.BigInteger(), nullable=False),
        sa.Column("ai_provider", sa.String(length=20), server_default="auto", nullable=False),
        sa.Column("ai_voice", sa.String(length=50), server_default="alloy", nullable=False),
        sa.Column("ai_language", sa.String(length=16), server_default="en", nullable=False),
        sa.Column("system_prompt", sa.Text(), server_default="", nullable=False),
        sa.Column("greeting", sa.Text(), server_default="", nullable=False),
        sa.Column("call_goal", sa.String(length=30), server_default="book_appointment", nullable=False),
        sa.Column("silence_timeout_s", sa.Integer(), server_default="8", nullable=False),
        sa.Column("silence_prompts_before_hangup", sa.Integer(), server_default="2", nullable=False),
        sa.Column("max_call_length_s", sa.Integer(), server_default="600", nullable=False),
        sa.Column("max_concurrent_calls", sa.Integer(), server_default="5", nullable=False),
        sa.Column("recording_enabled", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("transfer_number", sa.String(length=16), nullable=True),
        sa.Column("booking_enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("appointment_duration_min", sa.Integer(), server_default="30", nullable=False),
        sa.Column("min_notice_min", sa.Integer(), server_default="60", nullable=False),
        sa.Column("booking_window_days", sa.Integer(), server_default="30", nullable=False),
        sa.Column("cancellation_notice_h", sa.Integer(), server_default="24", nullable=False),
        sa.Column("require_email", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("webhook_url", sa.String(length=2000), nullable=True),
        sa.Column("call_completed_webhook_url", sa.String(length=2000), nullable=True),
        sa.Column("lead_status_webhook_url", sa.String(length=2000), nullable=True),
        sa.Column("webhook_secret", sa.String(length=100), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["business_id"],
            ["businesses.id"],
            name=op.f("fk_business_settings_business_id_businesses"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("business_id", name=op.f("pk_business_settings")),
    )
    op.create_table(
        "domain_events",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("business_id", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(length=60), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["business_id"],
            ["businesses.id"],
            name=op.f("fk_domain_events_business_id_businesses"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_domain_events")),
    )
    op.create_index("ix_domain_events_business_id_id", "domain_events", ["business_id", "id"], unique=False)
    op.create_index(
        "ix_domain_events_pending",
        "domain_events",
        ["id"],
        unique=False,
        postgresql_where=sa.text("dispatched_at IS NULL"),
    )
    op.create_table(
        "background_jobs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("business_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("state", sa.String(length=20), server_default="queued", nullable=False),
        sa.Column(
            "params",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("total", sa.Integer(), server_default="0", nullable=False),
        sa.Column("processed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("succeeded", sa.Integer(), server_default="0", nullable=False),
        sa.Column("failed", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "errors",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "result",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("created_by_user_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["business_id"],
            ["businesses.id"],
            name=op.f("fk_background_jobs_business_id_businesses"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["created_by_user_id"],
            ["users.id"],
            name=op.f("fk_background_jobs_created_by_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_background_jobs")),
    )
    op.create_index(op.f("ix_background_jobs_business_id"), "background_jobs", ["business_id"], unique=False)
    op.create_table(
        "lead_intake_endpoints",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("business_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("target_status_id", sa.BigInteger(), nullable=True),
        sa.Column("source", sa.String(length=50), server_default="webhook", nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["business_id"],
            ["businesses.id"],
            name=op.f("fk_lead_intake_endpoints_business_id_businesses"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["target_status_id"],
            ["lead_statuses.id"],
            name=op.f("fk_lead_intake_endpoints_target_status_id_lead_statuses"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lead_intake_endpoints")),
    )
    op.create_index(
        op.f("ix_lead_intake_endpoints_business_id"), "lead_intake_endpoints", ["business_id"], unique=False
    )
    op.create_table(
        "leads",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("business_id", sa.BigInteger(), nullable=False),
        sa.Column("status_id", sa.BigInteger(), nullable=False),
        sa.Column("rank", sa.Float(), nullable=False),
        sa.Column("first_name", sa.String(length=100), server_default="", nullable=False),
        sa.Column("last_name", sa.String(length=100), server_default="", nullable=False),
        sa.Column("phone", sa.String(length=16), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("company", sa.String(length=200), server_default="", nullable=False),
        sa.Column("source", sa.String(length=50), server_default="manual", nullable=False),
        sa.Column("owner_user_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "tags",
            postgresql.ARRAY(sa.String(length=50)),
            server_default=sa.text("'{}'::varchar[]"),
            nullable=False,
        ),
        sa.Column("reason", sa.Text(), server_default="", nullable=False),
        sa.Column(
            "fields",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "status_changed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column(
            "search_text",
            sa.Text(),
            sa.Computed(
                "lower(coalesce(first_name, '') || ' ' || coalesce(last_name, '') || ' ' "
                "|| coalesce(phone, '') || ' ' || coalesce(email, '') || ' ' || coalesce(company, ''))",
                persisted=True,
            ),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["business_id"],
            ["businesses.id"],
            name=op.f("fk_leads_business_id_businesses"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["owner_user_id"], ["users.id"], name=op.f("fk_leads_owner_user_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["status_id"],
            ["lead_statuses.id"],
            name=op.f("fk_leads_status_id_lead_statuses"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_leads")),
    )
    op.create_index(
        "ix_leads_business_id_created_at_id", "leads", ["business_id", "created_at", "id"], unique=False
    )
    op.create_index(
        "ix_leads_business_id_status_id_rank",
        "leads",
        ["business_id", "status_id", "rank", "id"],
        unique=False,
    )
    op.create_index(
        "ix_leads_business_id_updated_at_id", "leads", ["business_id", "updated_at", "id"], unique=False
    )
    op.create_index(op.f("ix_leads_owner_user_id"), "leads", ["owner_user_id"], unique=False)
    op.create_index(
        "ix_leads_search_trgm",
        "leads",
        ["search_text"],
        unique=False,
        postgresql_using="gin",
        postgresql_ops={"search_text": "gin_trgm_ops"},
    )
    op.create_index("ix_leads_tags", "leads", ["tags"], unique=False, postgresql_using="gin")
    op.create_index("uq_leads_business_id_phone", "leads", ["business_id", "phone"], unique=True)
    op.create_table(
        "lead_activities",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("business_id", sa.BigInteger(), nullable=False),
        sa.Column("lead_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("actor_user_id", sa.BigInteger(), nullable=True),
        sa.Column("summary", sa.String(length=500), nullable=False),
        sa.Column(
            "details",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_user_id"],
            ["users.id"],
            name=op.f("fk_lead_activities_actor_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["business_id"],
            ["businesses.id"],
            name=op.f("fk_lead_activities_business_id_businesses"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["lead_id"], ["leads.id"], name=op.f("fk_lead_activities_lead_id_leads"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lead_activities")),
    )
    op.create_index(op.f("ix_lead_activities_business_id"), "lead_activities", ["business_id"], unique=False)
    op.create_index("ix_lead_activities_lead_id_id", "lead_activities", ["lead_id", "id"], unique=False)
    op.create_table(
        "lead_imports",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("business_id", sa.BigInteger(), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("file_format", sa.String(length=10), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column(
            "columns",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column("row_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "mapping",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("job_id", sa.Uuid(), nullable=True),
        sa.Column("created_by_user_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["business_id"],
            ["businesses.id"],
            name=op.f("fk_lead_imports_business_id_businesses"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["created_by_user_id"],
            ["users.id"],
            name=op.f("fk_lead_imports_created_by_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["background_jobs.id"],
            name=op.f("fk_lead_imports_job_id_background_jobs"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lead_imports")),
    )
    op.create_index(op.f("ix_lead_imports_business_id"), "lead_imports", ["business_id"], unique=False)
    op.create_table(
        "lead_intake_receipts",
        sa.Column("endpoint_id", sa.Uuid(), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=False),
        sa.Column("lead_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["lead_intake_endpoints.id"],
            name=op.f("fk_lead_intake_receipts_endpoint_id_lead_intake_endpoints"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["lead_id"], ["leads.id"], name=op.f("fk_lead_intake_receipts_lead_id_leads"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("endpoint_id", "external_id", name=op.f("pk_lead_intake_receipts")),
    )
    op.create_table(
        "lead_notes",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("business_id", sa.BigInteger(), nullable=False),
        sa.Column("lead_id", sa.BigInteger(), nullable=False),
        sa.Column("author_user_id", sa.BigInteger(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_user_id"],
            ["users.id"],
            name=op.f("fk_lead_notes_author_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["business_id"],
            ["businesses.id"],
            name=op.f("fk_lead_notes_business_id_businesses"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["lead_id"], ["leads.id"], name=op.f("fk_lead_notes_lead_id_leads"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lead_notes")),
    )
    op.create_index(op.f("ix_lead_notes_business_id"), "lead_notes", ["business_id"], unique=False)
    op.create_index("ix_lead_notes_lead_id_id", "lead_notes", ["lead_id", "id"], unique=False)
    op.create_table(
        "lead_status_changes",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("business_id", sa.BigInteger(), nullable=False),
        sa.Column("lead_id", sa.BigInteger(), nullable=False),
        sa.Column("from_status_id", sa.BigInteger(), nullable=True),
        sa.Column("to_status_id", sa.BigInteger(), nullable=True),
        sa.Column("from_status_key", sa.String(length=50), nullable=True),
        sa.Column("to_status_key", sa.String(length=50), nullable=False),
        sa.Column("actor_user_id", sa.BigInteger(), nullable=True),
        sa.Column("via", sa.String(length=30), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_user_id"],
            ["users.id"],
            name=op.f("fk_lead_status_changes_actor_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["business_id"],
            ["businesses.id"],
            name=op.f("fk_lead_status_changes_business_id_businesses"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["from_status_id"],
            ["lead_statuses.id"],
            name=op.f("fk_lead_status_changes_from_status_id_lead_statuses"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["lead_id"], ["leads.id"], name=op.f("fk_lead_status_changes_lead_id_leads"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["to_status_id"],
            ["lead_statuses.id"],
            name=op.f("fk_lead_status_changes_to_status_id_lead_statuses"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lead_status_changes")),
    )
    op.create_index(
        op.f("ix_lead_status_changes_business_id"), "lead_status_changes", ["business_id"], unique=False
    )
    op.create_index(
        "ix_lead_status_changes_lead_id_id", "lead_status_changes", ["lead_id", "id"], unique=False
    )
    op.add_column(
        "businesses", sa.Column("default_region", sa.String(length=2), server_default="US", nullable=False)
    )
    # Every business has its settings row.
    op.execute("INSERT INTO business_settings (business_id) SELECT id FROM businesses")


def downgrade() -> None:
    op.drop_column("businesses", "default_region")
    op.drop_index("ix_lead_status_changes_lead_id_id", table_name="lead_status_changes")
    op.drop_index(op.f("ix_lead_status_changes_business_id"), table_name="lead_status_changes")
    op.drop_table("lead_status_changes")
    op.drop_index("ix_lead_notes_lead_id_id", table_name="lead_notes")
    op.drop_index(op.f("ix_lead_notes_business_id"), table_name="lead_notes")
    op.drop_table("lead_notes")
    op.drop_table("lead_intake_receipts")
    op.drop_index(op.f("ix_lead_imports_business_id"), table_name="lead_imports")
    op.drop_table("lead_imports")
    op.drop_index("ix_lead_activities_lead_id_id", table_name="lead_activities")
    op.drop_index(op.f("ix_lead_activities_business_id"), table_name="lead_activities")
    op.drop_table("lead_activities")
    op.drop_index("uq_leads_business_id_phone", table_name="leads")
    op.drop_index("ix_leads_tags", table_name="leads", postgresql_using="gin")
    op.drop_index(
        "ix_leads_search_trgm",
        table_name="leads",
        postgresql_using="gin",
        postgresql_ops={"search_text": "gin_trgm_ops"},
    )
    op.drop_index(op.f("ix_leads_owner_user_id"), table_name="leads")
    op.drop_index("ix_leads_business_id_updated_at_id", table_name="leads")
    op.drop_index("ix_leads_business_id_status_id_rank", table_name="leads")
    op.drop_index("ix_leads_business_id_created_at_id", table_name="leads")
    op.drop_table("leads")
    op.drop_index(op.f("ix_lead_intake_endpoints_business_id"), table_name="lead_intake_endpoints")
    op.drop_table("lead_intake_endpoints")
    op.drop_index(op.f("ix_background_jobs_business_id"), table_name="background_jobs")
    op.drop_table("background_jobs")
    op.drop_index(
        "ix_domain_events_pending",
        table_name="domain_events",
        postgresql_where=sa.text("dispatched_at IS NULL"),
    )
    op.drop_index("ix_domain_events_business_id_id", table_name="domain_events")
    op.drop_table("domain_events")
    op.drop_table("business_settings")
