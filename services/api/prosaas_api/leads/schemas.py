"""Bodies of /api/leads and /api/lead-statuses."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from prosaas_api.ids import MAX_ROW_ID
from prosaas_common.leads.values import InvalidLeadValue, clean_tags

ShortText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)]
Color = Annotated[str, StringConstraints(pattern=r"^#[0-9a-fA-F]{6}$")]
SortKey = Literal["-created_at", "created_at", "-updated_at", "updated_at"]


def clean_tag_list(value: list[str] | None) -> list[str] | None:
    """Pydantic validator body: tags cleaned, or a ValueError naming the bad one."""
    if value is None:
        return None
    try:
        return clean_tags(value)
    except InvalidLeadValue as exc:
        raise ValueError(exc.message) from None


def _custom_fields(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    if len(value) > 50:
        raise ValueError("at most 50 custom fields")
    for key, item in value.items():
        if not key or len(key) > 100:
            raise ValueError("custom field names are 1-100 characters")
        if not isinstance(item, str | int | float | bool) and item is not None:
            raise ValueError(f"custom field {key!r} must be a string, number, boolean or null")
        if isinstance(item, str) and len(item) > 1000:
            raise ValueError(f"custom field {key!r} is longer than 1000 characters")
    return value


class LeadFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    first_name: ShortText | None = None
    last_name: ShortText | None = None
    phone: Annotated[str, StringConstraints(strip_whitespace=True, max_length=40)] | None = Field(
        None,
        description="any common format; stored in E.164 (national numbers read in the business's region)",
    )
    email: Annotated[str, StringConstraints(strip_whitespace=True, max_length=320)] | None = None
    company: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None = None
    source: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)] | None = (
        None
    )
    owner_user_id: int | None = Field(None, gt=0, le=MAX_ROW_ID)
    tags: list[str] | None = Field(None, max_length=30)
    reason: Annotated[str, StringConstraints(max_length=5000)] | None = None
    fields: dict[str, Any] | None = Field(None, description="custom fields: name → string/number/boolean")
    status_id: int | None = Field(None, gt=0, le=MAX_ROW_ID)

    @field_validator("tags")
    @classmethod
    def _check_tags(cls, value: list[str] | None) -> list[str] | None:
        return clean_tag_list(value)

    @field_validator("fields")
    @classmethod
    def _check_fields(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return _custom_fields(value)


class LeadCreate(LeadFields):
    """A new lead; a phone another lead of the business has updates that lead instead (200)."""

    name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None = Field(
        None, description="full name, split into first and last name when those are not given"
    )


class LeadUpdate(LeadFields):
    """Fields left out stay as they are; null clears phone, e-mail or owner."""


class StatusRef(BaseModel):
    id: int
    key: str
    name: str
    color: str


class LeadOut(BaseModel):
    id: int
    first_name: str
    last_name: str
    full_name: str
    phone: str | None
    email: str | None
    company: str
    source: str
    status: StatusRef
    owner_user_id: int | None
    tags: list[str]
    reason: str
    fields: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    status_changed_at: datetime
    created: bool | None = Field(None, description="on create: false when an existing lead was updated")


class LeadPage(BaseModel):
    items: list[LeadOut]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null at the end")


class LeadCount(BaseModel):
    count: int


class MoveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status_id: int = Field(gt=0, le=MAX_ROW_ID)
    position: int = Field(0, ge=0, le=1_000_000, description="0-based place in the target column")


class NoteCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=10000)]


class NoteOut(BaseModel):
    id: int
    lead_id: int
    author_user_id: int | None
    body: str
    created_at: datetime
    updated_at: datetime


class NotePage(BaseModel):
    items: list[NoteOut]
    next_before: int | None


class ActivityOut(BaseModel):
    id: int
    kind: str
    summary: str
    actor_user_id: int | None
    details: dict[str, Any]
    created_at: datetime


class TimelinePage(BaseModel):
    items: list[ActivityOut]
    next_before: int | None = Field(description="pass as ?before= for older entries; null at the end")


class StatusChangeOut(BaseModel):
    id: int
    from_status_id: int | None
    to_status_id: int | None
    from_status_key: str | None
    to_status_key: str
    actor_user_id: int | None
    via: str
    created_at: datetime


class BoardColumn(BaseModel):
    status: StatusRef
    count: int
    leads: list[LeadOut]


class Board(BaseModel):
    columns: list[BoardColumn]


class StatusOut(BaseModel):
    id: int
    key: str
    name: str
    color: str
    position: int
    is_default: bool
    is_system: bool
    lead_count: int


class StatusCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    key: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,49}$")] | None = Field(
        None, description="stable identifier (a-z, 0-9, _); made from the name when left out"
    )
    color: Color = "#64748b"
    is_default: bool = False


class StatusUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)] | None = None
    color: Color | None = None
    is_default: Literal[True] | None = Field(None, description="true makes this the default status")


class StatusReorder(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: list[Annotated[int, Field(ge=1, le=MAX_ROW_ID)]] = Field(
        min_length=1, max_length=100, description="every status id, in the new order"
    )
