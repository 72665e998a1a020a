"""What appointment automations and follow-up rules share: a per-business limit, and their scheduled
messages cancelled in the same transaction when they are deactivated, moved or deleted."""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import InstrumentedAttribute

from prosaas_api import audit
from prosaas_api.auth.principal import Principal
from prosaas_api.messaging.messages import cancel_scheduled
from prosaas_api.tenancy import TenantRepository
from prosaas_common.models import FollowupRule, MessageAutomation

RuleT = TypeVar("RuleT", MessageAutomation, FollowupRule)


class PlanningRuleRepository(TenantRepository[RuleT]):
    # The audit entity name, and the outbound_messages column that points at a row of this model.
    entity: ClassVar[str]
    message_column: ClassVar[InstrumentedAttribute[int | None]]

    async def count(self) -> int:
        return int(await self.db.scalar(select(func.count()).select_from(self.query().subquery())) or 0)

    async def cancel_messages(self, row: RuleT) -> int:
        return await cancel_scheduled(self.db, self.business_id, type(self).message_column == row.id)

    async def update(
        self, principal: Principal, row: RuleT, changes: dict[str, Any], *, cancels: bool
    ) -> None:
        """Apply ``changes``; with ``cancels`` the row's scheduled messages are cancelled too. Audited."""
        for key, value in changes.items():
            setattr(row, key, value)
        cancelled = await self.cancel_messages(row) if cancels else 0
        await self.db.flush()
        await self.db.refresh(row)
        details = {"fields": sorted(changes), "cancelled_messages": cancelled}
        await audit.record(self.db, principal, f"{self.entity}.updated", self.entity, row.id, details)

    async def delete(self, principal: Principal, row_id: int) -> None:
        """Delete the row and cancel its scheduled messages (sent ones stay, without its id). Audited."""
        row = await self.get(row_id, for_update=True)
        cancelled = await self.cancel_messages(row)
        await self.db.delete(row)
        await self.db.flush()
        details = {"name": row.name, "cancelled_messages": cancelled}
        await audit.record(self.db, principal, f"{self.entity}.deleted", self.entity, row_id, details)
