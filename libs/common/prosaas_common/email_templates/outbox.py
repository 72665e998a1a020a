"""Writing a templated e-mail to the outbox (``outbound_emails``), the one way producers queue e-mail.

The row carries the subject, both bodies and the From display name of the business it is sent for
(:func:`sender_name`); the worker's ``email.deliver`` always sends from SMTP_FROM's address, so a
business only ever chooses how its name reads. The caller enqueues ``email.deliver`` after its commit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from prosaas_common.email_templates.render import clean_display_name, render_email
from prosaas_common.models import Business, BusinessSettings, OutboundEmail


async def sender_name(db: AsyncSession, business_id: int | None) -> str | None:
    """The From display name for e-mail of a business: its ``email_from_name`` setting, else its name;
    None (SMTP_FROM's own name) for e-mail that belongs to no business."""
    if business_id is None:
        return None
    row = (
        await db.execute(
            select(BusinessSettings.email_from_name, Business.name)
            .select_from(Business)
            .outerjoin(BusinessSettings, BusinessSettings.business_id == Business.id)
            .where(Business.id == business_id)
        )
    ).first()
    if row is None:
        return None
    return clean_display_name(row.email_from_name) or clean_display_name(row.name)


async def add_templated_email(
    db: AsyncSession,
    *,
    business_id: int | None,
    to_address: str,
    dedup_key: str,
    template: str,
    context: Mapping[str, Any],
) -> int | None:
    """Render ``template`` and write its outbox row; the new row's id, or None when an e-mail with this
    ``dedup_key`` exists already (the caller then has nothing to enqueue).

    ``sender_name`` is added to the context (the templates sign with it) unless the caller gave one.
    """
    from_name = await sender_name(db, business_id)
    rendered = render_email(template, **{"sender_name": from_name, **context})
    email_id: int | None = await db.scalar(
        insert(OutboundEmail)
        .values(
            business_id=business_id,
            dedup_key=dedup_key,
            to_address=to_address,
            subject=rendered.subject,
            body_text=rendered.text,
            body_html=rendered.html,
            from_name=from_name,
        )
        .on_conflict_do_nothing(index_elements=[OutboundEmail.dedup_key])
        .returning(OutboundEmail.id)
    )
    return email_id
