"""One bulk change (status, owner, tags, delete) applied to a batch of leads — the same code for a
small selection changed inside the request and for the worker's job over a large one.

Leads are walked in id order (keyset: ``id > cursor``) and locked per batch, so a job that dies can
continue after the last committed batch without touching a lead twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast, get_args

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from prosaas_common.leads.filters import LeadFilter, leads_of
from prosaas_common.leads.writer import LeadWriter
from prosaas_common.models import Lead

BulkActionName = Literal["set_status", "set_owner", "add_tags", "remove_tags", "delete"]
BULK_ACTIONS: tuple[str, ...] = get_args(BulkActionName)


@dataclass(frozen=True)
class BulkChange:
    action: BulkActionName
    status_id: int | None = None
    owner_user_id: int | None = None  # set_owner with None unassigns
    tags: tuple[str, ...] = ()  # already cleaned (clean_tags)

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "status_id": self.status_id,
            "owner_user_id": self.owner_user_id,
            "tags": list(self.tags),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BulkChange:
        action = data["action"]
        if action not in BULK_ACTIONS:
            raise ValueError(f"unknown bulk action {action!r}")
        return cls(
            action=cast(BulkActionName, action),
            status_id=data.get("status_id"),
            owner_user_id=data.get("owner_user_id"),
            tags=tuple(data.get("tags") or ()),
        )


@dataclass(frozen=True)
class BulkSelection:
    """Either explicit lead ids or a filter; ids of another business simply never match."""

    ids: tuple[int, ...] | None = None
    lead_filter: LeadFilter | None = None

    def query(self, business_id: int) -> Select[Lead]:
        if self.ids is not None:
            return leads_of(business_id).where(Lead.id.in_(self.ids))
        return (self.lead_filter or LeadFilter()).apply(business_id)

    def to_json(self) -> dict[str, Any]:
        if self.ids is not None:
            return {"ids": list(self.ids)}
        return {"filter": (self.lead_filter or LeadFilter()).to_json()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BulkSelection:
        if data.get("ids") is not None:
            return cls(ids=tuple(int(i) for i in data["ids"]))
        return cls(lead_filter=LeadFilter.from_json(data.get("filter") or {}))


async def count_matching(db: AsyncSession, query: Select[Lead]) -> int:
    total = await db.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    return int(total or 0)


async def lock_batch(db: AsyncSession, query: Select[Lead], *, after_id: int, limit: int) -> list[Lead]:
    """The next ``limit`` leads of ``query`` with an id above ``after_id``, in id order, row-locked."""
    statement = query.where(Lead.id > after_id).order_by(Lead.id).limit(limit).with_for_update()
    return list((await db.scalars(statement)).all())


async def apply_change(writer: LeadWriter, leads: Sequence[Lead], change: BulkChange) -> int:
    """Apply ``change`` to each lead through the writer (status history, timeline, events); returns
    how many leads actually changed (a lead already in the target state is matched, not changed)."""
    changed = 0
    for lead in leads:
        if change.action == "set_status":
            assert change.status_id is not None
            changed += await writer.change_status(lead, change.status_id)
        elif change.action == "delete":
            await writer.delete(lead)
            changed += 1
        else:
            updates = _updates(lead, change)
            if updates:
                await writer.update(lead, updates, summary=f"Bulk change: {change.action}")
                changed += 1
    return changed


def _updates(lead: Lead, change: BulkChange) -> dict[str, Any]:
    current = list(lead.tags or [])
    if change.action == "set_owner":
        return {"owner_user_id": change.owner_user_id} if lead.owner_user_id != change.owner_user_id else {}
    if change.action == "add_tags":
        added = [tag for tag in change.tags if tag not in current]
        return {"tags": [*current, *added]} if added else {}
    if change.action == "remove_tags":
        kept = [tag for tag in current if tag not in change.tags]
        return {"tags": kept} if len(kept) != len(current) else {}
    raise ValueError(f"unknown bulk action {change.action!r}")
