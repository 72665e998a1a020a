"""What every new business gets: its settings row, its default (system) lead statuses and a default
calendar (Monday to Friday, 09:00-17:00 in its time zone)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from prosaas_common.models import (
    DEFAULT_LEAD_STATUSES,
    DEFAULT_WEEKLY_HOURS,
    Business,
    BusinessSettings,
    Calendar,
    LeadStatus,
)


async def provision_business(db: AsyncSession, business: Business) -> None:
    """Add the settings row, default statuses and calendar of a flushed ``business`` (flushes)."""
    db.add(BusinessSettings(business_id=business.id))
    db.add(
        Calendar(
            business_id=business.id, name="Main calendar", is_default=True, weekly_hours=DEFAULT_WEEKLY_HOURS
        )
    )
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
