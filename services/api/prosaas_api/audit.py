"""The audit trail. Routes record their writes with :func:`record`; impersonated writes are recorded by
the principal dependency itself (:func:`record_impersonated_request`), so none can be missed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from structlog.contextvars import get_contextvars

from prosaas_common.db import unit_of_work
from prosaas_common.models import AuditEvent

if TYPE_CHECKING:
    from prosaas_api.auth.principal import Principal


def _event(
    principal: Principal,
    action: str,
    entity_type: str | None,
    entity_id: str | int | None,
    details: dict[str, Any] | None,
) -> AuditEvent:
    request_id = get_contextvars().get("request_id")
    return AuditEvent(
        business_id=principal.business_id,
        actor_user_id=principal.user_id,
        impersonated=principal.impersonating,
        action=action,
        entity_type=entity_type,
        entity_id=str(entity_id) if entity_id is not None else None,
        details=details or {},
        request_id=str(request_id) if request_id else None,
    )


async def record(
    db: AsyncSession,
    principal: Principal,
    action: str,
    entity_type: str | None = None,
    entity_id: str | int | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Add an audit event to the request's transaction (it commits or rolls back with the change)."""
    db.add(_event(principal, action, entity_type, entity_id, details))
    await db.flush()


async def record_impersonated_request(
    sessions: async_sessionmaker[AsyncSession], principal: Principal, method: str, path: str
) -> None:
    """Record a write attempted while impersonating, in its own transaction: kept even if it fails."""
    async with unit_of_work(sessions) as db:
        db.add(_event(principal, "impersonated.request", None, None, {"method": method, "path": path}))
