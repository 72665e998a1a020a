"""Bodies of /api/admin/businesses."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from prosaas_api.auth.schemas import Email
from prosaas_api.business.schemas import IANA_ZONES, BusinessOut, Locale, Name
from prosaas_common.phones import SUPPORTED_REGIONS, to_e164

MAX_PHONE_NUMBERS = 20


class OwnerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email
    full_name: Annotated[str, Field(max_length=200)] = ""


class BusinessCreate(BaseModel):
    """A new business with its owner (invited by e-mail to set a password) and phone numbers."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    timezone: str = Field("UTC", description="IANA time zone")
    locale: Locale = "en"
    default_region: str = Field("US", description="ISO 3166 region for numbers written without +country")
    phone_numbers: list[str] = Field(default_factory=list, max_length=MAX_PHONE_NUMBERS)
    owner: OwnerIn

    @field_validator("timezone")
    @classmethod
    def _iana(cls, value: str) -> str:
        if value not in IANA_ZONES:
            raise ValueError("not an IANA time zone (e.g. Europe/Berlin, America/New_York)")
        return value

    @field_validator("default_region")
    @classmethod
    def _region(cls, value: str) -> str:
        if value.upper() not in SUPPORTED_REGIONS:
            raise ValueError("not a supported ISO 3166 region code (e.g. US, DE, IL)")
        return value.upper()

    @field_validator("phone_numbers")
    @classmethod
    def _e164(cls, values: list[str], info: ValidationInfo) -> list[str]:
        region = info.data.get("default_region", "US")
        normalised = [to_e164(raw, region) for raw in values]
        if len(set(normalised)) != len(normalised):
            raise ValueError("the same number is listed twice")
        return normalised


class AdminBusinessOut(BusinessOut):
    created_at: datetime
    phone_numbers: list[str]


class AdminBusinessPage(BaseModel):
    items: list[AdminBusinessOut]
    next_after: int | None = Field(description="pass as ?after= for the next page; null at the end")
