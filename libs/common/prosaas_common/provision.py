"""What every new business gets: its settings row and its default (system) lead statuses."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from prosaas_common.models import DEFAULT_LEAD_STATUSES, Business, BusinessSettings, LeadStatus


async def provision_business(db: AsyncSession, business: Business) -> None:
    """Add the settings row and the default statuses of a flushed ``business`` (flushes)."""
    db.add(BusinessSettings(business_id=business.id))
    for position, (key, name, color, is_default) in enumerate(DEFAULT_LEAD_STATUSES):
        db.add(
            LeadStatus(
                business_id=business.id,
                key=key,
                name=name,
                color=color,
                position=position,
                is_default=is_default,
                is_system=True,
            )
        )
    await db.flush()
