"""Which leads a list, an export or a bulk change applies to: one filter, one SQL translation.

Always bound to one business (:func:`leads_of`), so the tenant filter is written here and nowhere else.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, select

from prosaas_common.models import Lead
from prosaas_common.phones import to_e164

# A query that is only digits and phone punctuation searches the phone column by its digits.
PHONE_QUERY = re.compile(r"^\+?[\d\s().\-/]{3,}$")
LIKE_SPECIALS = re.compile(r"([\\%_])")


def leads_of(business_id: int) -> Select[Lead]:
    return select(Lead).where(Lead.business_id == business_id)


def _like_term(term: str) -> str:
    return "%" + LIKE_SPECIALS.sub(r"\\\1", term) + "%"


def is_phone_query(query: str) -> bool:
    text = query.strip()
    return bool(PHONE_QUERY.match(text)) and sum(c.isdigit() for c in text) >= 3


def search_condition(query: str, region: str | None = None) -> ColumnElement[bool] | None:
    """Each word must appear in name, phone, e-mail or company (trigram-indexed ``LIKE``).

    A query that is a whole valid phone number (national ones read in ``region``) matches the phone
    exactly, on the (business, phone) index: digit trigrams are shared by nearly every lead, so a
    substring search for a full number would be slow. Shorter digit runs search the phone digits:
    ``555 010`` finds ``+15550102030``.
    """
    text = query.strip().lower()
    if not text:
        return None
    if is_phone_query(text):
        if region is not None:
            try:
                return Lead.phone == to_e164(text, region)
            except ValueError:
                pass
        terms = [re.sub(r"\D", "", text)]
    else:
        terms = text.split()
    return and_(*(Lead.search_text.like(_like_term(term), escape="\\") for term in terms))


@dataclass(frozen=True)
class LeadFilter:
    status_ids: tuple[int, ...] = ()
    source: str | None = None
    owner_user_id: int | None = None
    unassigned: bool = False
    tags: tuple[str, ...] = field(default_factory=tuple)  # leads carrying all of them
    created_from: datetime | None = None
    created_to: datetime | None = None
    q: str | None = None
    region: str | None = None  # the business's default region, for national phone numbers in q

    def conditions(self) -> list[ColumnElement[bool]]:
        found: list[ColumnElement[bool]] = []
        if self.status_ids:
            found.append(Lead.status_id.in_(self.status_ids))
        if self.source:
            found.append(Lead.source == self.source)
        if self.owner_user_id is not None:
            found.append(Lead.owner_user_id == self.owner_user_id)
        if self.unassigned:
            found.append(Lead.owner_user_id.is_(None))
        if self.tags:
            found.append(Lead.tags.contains(list(self.tags)))
        if self.created_from is not None:
            found.append(Lead.created_at >= self.created_from)
        if self.created_to is not None:
            found.append(Lead.created_at < self.created_to)
        if self.q:
            condition = search_condition(self.q, self.region)
            if condition is not None:
                found.append(condition)
        return found

    def apply(self, business_id: int) -> Select[Lead]:
        return leads_of(business_id).where(*self.conditions())

    def to_json(self) -> dict[str, Any]:
        """For a job's params (JSON): datetimes as ISO strings."""
        data = asdict(self)
        for key in ("created_from", "created_to"):
            if data[key] is not None:
                data[key] = data[key].isoformat()
        data["status_ids"] = list(self.status_ids)
        data["tags"] = list(self.tags)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LeadFilter:
        def when(value: str | None) -> datetime | None:
            return datetime.fromisoformat(value) if value else None

        return cls(
            status_ids=tuple(data.get("status_ids") or ()),
            source=data.get("source"),
            owner_user_id=data.get("owner_user_id"),
            unassigned=bool(data.get("unassigned")),
            tags=tuple(data.get("tags") or ()),
            created_from=when(data.get("created_from")),
            created_to=when(data.get("created_to")),
            q=data.get("q"),
            region=data.get("region"),
        )
