"""Bodies of /api/business/current."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from zoneinfo import available_timezones

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

IANA_ZONES = frozenset(available_timezones())
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Locale = Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}(-[A-Z]{2})?$")]


class BusinessOut(BaseModel):
    id: int
    name: str
    timezone: str
    locale: str
    default_region: str = Field(description="ISO 3166 region for phone numbers written without +country")
    is_active: bool


class AuditEntry(BaseModel):
    id: int
    created_at: datetime
    actor_user_id: int | None
    impersonated: bool
    action: str
    entity_type: str | None
    entity_id: str | None
    details: dict[str, Any]
    request_id: str | None


class AuditPage(BaseModel):
    items: list[AuditEntry]
    next_before: int | None = Field(description="pass as ?before= for the next (older) page; null at the end")


class BusinessUpdate(BaseModel):
    """Fields left out stay as they are."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    timezone: str | None = Field(None, description="IANA time zone, e.g. Europe/Berlin")
    locale: Locale | None = Field(None, description="e.g. en, de, pt-BR")

    @field_validator("timezone")
    @classmethod
    def _iana(cls, value: str | None) -> str | None:
        if value is not None and value not in IANA_ZONES:
            raise ValueError("not an IANA time zone (e.g. Europe/Berlin, America/New_York)")
        return value
