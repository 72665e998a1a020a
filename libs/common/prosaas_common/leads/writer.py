"""Writes to leads with their consequences: status history, timeline entries and domain events.

A :class:`LeadWriter` is bound to one business, the acting user (None for the system) and the channel
(``via``: api, kanban, bulk, import, webhook, call). It only flushes; the caller's boundary commits,
and the events' jobs go out after that commit.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from prosaas_common.events import JobPool, record_event
from prosaas_common.models import Lead, LeadActivity, LeadNote, LeadStatus, LeadStatusChange

# Columns a caller may set directly (status goes through change_status).
WRITABLE = (
    "first_name",
    "last_name",
    "phone",
    "email",
    "company",
    "source",
    "owner_user_id",
    "tags",
    "reason",
    "fields",
)


class DuplicatePhone(Exception):
    def __init__(self, lead_id: int) -> None:
        super().__init__(f"lead {lead_id} already has this phone number")
        self.lead_id = lead_id


class UnknownStatus(LookupError):
    pass


def status_ref(status: LeadStatus | None) -> dict[str, Any] | None:
    if status is None:
        return None
    return {"id": status.id, "key": status.key, "name": status.name}


def lead_payload(lead: Lead) -> dict[str, Any]:
    """The lead as domain events carry it."""
    return {
        "id": lead.id,
        "first_name": lead.first_name,
        "last_name": lead.last_name,
        "phone": lead.phone,
        "email": lead.email,
        "company": lead.company,
        "source": lead.source,
        "status_id": lead.status_id,
        "owner_user_id": lead.owner_user_id,
        "tags": list(lead.tags or []),
        "reason": lead.reason,
        "fields": dict(lead.fields or {}),
    }


class LeadWriter:
    def __init__(
        self, db: AsyncSession, business_id: int, *, actor_user_id: int | None, via: str, pool: JobPool
    ) -> None:
        self.db = db
        self.business_id = business_id
        self.actor_user_id = actor_user_id
        self.via = via
        self.pool = pool
        self._statuses: dict[int, LeadStatus] = {}

    # statuses -----------------------------------------------------------------------------------
    async def status(self, status_id: int) -> LeadStatus:
        """A status of this business (UnknownStatus otherwise, also for another business's)."""
        if status_id not in self._statuses:
            status = await self.db.scalar(
                select(LeadStatus).where(
                    LeadStatus.id == status_id, LeadStatus.business_id == self.business_id
                )
            )
            if status is None:
                raise UnknownStatus(f"status {status_id} does not exist")
            self._statuses[status_id] = status
        return self._statuses[status_id]

    async def default_status(self) -> LeadStatus:
        status = await self.db.scalar(
            select(LeadStatus)
            .where(LeadStatus.business_id == self.business_id)
            .order_by(LeadStatus.is_default.desc(), LeadStatus.position, LeadStatus.id)
            .limit(1)
        )
        if status is None:
            raise UnknownStatus("the business has no lead statuses")
        self._statuses[status.id] = status
        return status

    async def top_rank(self, status_id: int) -> float:
        """A rank that puts a lead first in its kanban column."""
        lowest = await self.db.scalar(
            select(func.min(Lead.rank)).where(
                Lead.business_id == self.business_id, Lead.status_id == status_id
            )
        )
        return (lowest if lowest is not None else 0.0) - 1.0

    # leads --------------------------------------------------------------------------------------
    async def upsert(self, values: dict[str, Any], status_id: int | None = None) -> tuple[Lead, bool]:
        """Create the lead, or — when a lead of this business has the phone — update that one.

        ``values`` are already normalised (phone in E.164). An existing lead keeps its status; its
        empty fields are filled, tags are merged and custom fields are merged. Returns (lead, created).
        Safe under concurrency: the unique (business, phone) index decides who creates.
        """
        status = await self.status(status_id) if status_id is not None else await self.default_status()
        phone = values.get("phone")
        if phone:
            inserted = await self.db.scalar(
                pg_insert(Lead)
                .values(
                    business_id=self.business_id,
                    status_id=status.id,
                    rank=await self.top_rank(status.id),
                    **{key: value for key, value in values.items() if key in WRITABLE},
                )
                .on_conflict_do_nothing(index_elements=["business_id", "phone"])
                .returning(Lead.id)
            )
            if inserted is None:
                existing = await self.db.scalar(
                    select(Lead)
                    .where(Lead.business_id == self.business_id, Lead.phone == phone)
                    .with_for_update()
                )
                assert existing is not None
                await self.merge(existing, values)
                return existing, False
            lead = await self.db.get(Lead, inserted)
            assert lead is not None
        else:
            lead = Lead(
                business_id=self.business_id,
                status_id=status.id,
                rank=await self.top_rank(status.id),
                **{key: value for key, value in values.items() if key in WRITABLE},
            )
            self.db.add(lead)
            await self.db.flush()
        await self.db.refresh(lead)
        await self.activity(lead, "created", f"Lead created ({self.via})", {"source": lead.source})
        await record_event(self.db, self.pool, self.business_id, "lead.created", {"lead": lead_payload(lead)})
        return lead, True

    async def merge(self, lead: Lead, values: dict[str, Any]) -> None:
        """A repeated lead (same phone): fill what was empty, merge tags and custom fields."""
        changes: dict[str, Any] = {}
        for key in ("first_name", "last_name", "email", "company", "reason", "owner_user_id"):
            new = values.get(key)
            if new and not getattr(lead, key):
                changes[key] = new
        tags = [tag for tag in values.get("tags") or [] if tag not in (lead.tags or [])]
        if tags:
            changes["tags"] = [*(lead.tags or []), *tags]
        extra = {k: v for k, v in (values.get("fields") or {}).items() if (lead.fields or {}).get(k) != v}
        if extra:
            changes["fields"] = {**(lead.fields or {}), **extra}
        if changes:
            await self.update(lead, changes, summary="Lead updated again from " + self.via)

    async def update(self, lead: Lead, changes: dict[str, Any], *, summary: str = "Lead updated") -> None:
        """Set fields (already normalised); a phone another lead has raises DuplicatePhone."""
        changes = {key: value for key, value in changes.items() if key in WRITABLE}
        phone = changes.get("phone")
        if phone and phone != lead.phone:
            other = await self.db.scalar(
                select(Lead.id).where(
                    Lead.business_id == self.business_id, Lead.phone == phone, Lead.id != lead.id
                )
            )
            if other is not None:
                raise DuplicatePhone(other)
        changed = {key: value for key, value in changes.items() if getattr(lead, key) != value}
        if not changed:
            return
        for key, value in changed.items():
            setattr(lead, key, value)
        lead.updated_at = func.now()
        await self.db.flush()
        await self.db.refresh(lead)
        await self.activity(lead, "updated", summary, {"fields": sorted(changed)})

    async def change_status(self, lead: Lead, status_id: int, *, rank: float | None = None) -> bool:
        """Move the lead to ``status_id`` (first in the column unless ``rank`` is given).

        Records the status history, a timeline entry and the ``lead.status_changed`` event. Returns
        whether the status changed (a move within one column changes only the rank).
        """
        target = await self.status(status_id)
        if lead.status_id == target.id:
            if rank is not None and rank != lead.rank:
                lead.rank = rank
                await self.db.flush()
                await self.db.refresh(lead)  # updated_at is set by the database
            return False
        previous = await self.status(lead.status_id)
        lead.status_id = target.id
        lead.rank = rank if rank is not None else await self.top_rank(target.id)
        lead.status_changed_at = func.now()
        lead.updated_at = func.now()
        self.db.add(
            LeadStatusChange(
                business_id=self.business_id,
                lead_id=lead.id,
                from_status_id=previous.id,
                to_status_id=target.id,
                from_status_key=previous.key,
                to_status_key=target.key,
                actor_user_id=self.actor_user_id,
                via=self.via,
            )
        )
        await self.db.flush()
        await self.db.refresh(lead)
        await self.activity(
            lead,
            "status_changed",
            f"Status: {previous.name} → {target.name}",
            {"from": status_ref(previous), "to": status_ref(target), "via": self.via},
        )
        await record_event(
            self.db,
            self.pool,
            self.business_id,
            "lead.status_changed",
            {
                "lead_id": lead.id,
                "from": status_ref(previous),
                "to": status_ref(target),
                "via": self.via,
                "actor_user_id": self.actor_user_id,
                "lead": lead_payload(lead),
            },
        )
        return True

    async def add_note(self, lead: Lead, body: str) -> LeadNote:
        note = LeadNote(
            business_id=self.business_id, lead_id=lead.id, author_user_id=self.actor_user_id, body=body
        )
        self.db.add(note)
        await self.db.flush()
        await self.activity(lead, "note_added", body[:200], {"note_id": note.id})
        return note

    async def delete(self, lead: Lead) -> None:
        await self.db.delete(lead)
        await self.db.flush()

    async def activity(
        self, lead: Lead, kind: str, summary: str, details: dict[str, Any] | None = None
    ) -> LeadActivity:
        entry = LeadActivity(
            business_id=self.business_id,
            lead_id=lead.id,
            kind=kind,
            actor_user_id=self.actor_user_id,
            summary=summary[:500],
            details=details or {},
        )
        self.db.add(entry)
        await self.db.flush()
        return entry
