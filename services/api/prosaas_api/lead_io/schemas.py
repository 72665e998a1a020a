"""Bodies of the leads export, import and bulk endpoints and of /api/jobs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from prosaas_api.ids import MAX_ROW_ID
from prosaas_api.leads.schemas import clean_tag_list
from prosaas_common.leads.bulk import BulkActionName
from prosaas_common.leads.filters import LeadFilter

# Ids above this many (or any filter) run as a background job; up to it, inside the request.
SYNC_BULK_LIMIT = 200
MAX_BULK_IDS = 10_000
# A database id (bigint): larger numbers are a 422, not a database error.
Id = Annotated[int, Field(gt=0, le=MAX_ROW_ID)]

Mapping = dict[
    Annotated[str, StringConstraints(max_length=200)], Annotated[str, StringConstraints(max_length=120)]
]


class JobOut(BaseModel):
    id: uuid.UUID
    kind: str
    state: str = Field(description="queued, running, succeeded or failed")
    total: int
    processed: int
    succeeded: int
    failed: int
    progress: float = Field(ge=0, le=1, description="processed / total")
    errors: list[dict[str, Any]] = Field(description="the first 100 per-row errors {row, field, message}")
    result: dict[str, Any]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


# import ------------------------------------------------------------------------------------------
class ImportOut(BaseModel):
    id: uuid.UUID
    filename: str
    file_format: str
    columns: list[str]
    row_count: int
    mapping: dict[str, str] = Field(
        description="column → first_name, last_name, name, phone, email, company, source, tags, reason, "
        "status, fields.<name> or ignore"
    )
    preview: list[dict[str, str]] = Field(description="the first rows, column → cell")
    created_at: datetime


class PreviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mapping: Mapping | None = Field(None, description="default: the mapping guessed at upload")


class RowErrorOut(BaseModel):
    row: int = Field(description="row number in the file (the header is row 1)")
    field: str
    message: str


class PreviewRow(BaseModel):
    row: int
    values: dict[str, Any] = Field(description="the normalised lead values")
    status_id: int | None
    errors: list[RowErrorOut]


class PreviewOut(BaseModel):
    mapping: dict[str, str]
    rows: list[PreviewRow]
    valid: int
    invalid: int


class StartRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mapping: Mapping | None = None
    dry_run: bool = Field(False, description="validate the whole file without writing leads")
    default_status_id: Id | None = Field(None, description="status of new leads without one")


# bulk --------------------------------------------------------------------------------------------
class BulkFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status_ids: list[Id] = Field(default_factory=list, max_length=100)
    source: Annotated[str, StringConstraints(strip_whitespace=True, max_length=50)] | None = None
    owner_user_id: Id | None = None
    unassigned: bool = False
    tags: list[str] = Field(default_factory=list, max_length=30)
    created_from: datetime | None = None
    created_to: datetime | None = None
    q: Annotated[str, StringConstraints(max_length=200)] | None = None

    @field_validator("tags")
    @classmethod
    def _check_tags(cls, value: list[str]) -> list[str]:
        return clean_tag_list(value) or []

    def to_filter(self) -> LeadFilter:
        return LeadFilter(
            status_ids=tuple(self.status_ids),
            source=self.source or None,
            owner_user_id=self.owner_user_id,
            unassigned=self.unassigned,
            tags=tuple(self.tags),
            created_from=self.created_from,
            created_to=self.created_to,
            q=self.q,
        )


class BulkSelectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: list[Id] | None = Field(None, min_length=1, max_length=MAX_BULK_IDS)
    filter: BulkFilter | None = None

    @model_validator(mode="after")
    def _one_of(self) -> Self:
        if (self.ids is None) == (self.filter is None):
            raise ValueError("give either ids or filter")
        return self


class BulkRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    selection: BulkSelectionIn
    action: BulkActionName
    status_id: Id | None = Field(None, description="set_status: the new status")
    owner_user_id: Id | None = Field(None, description="set_owner: the new owner (null unassigns)")
    tags: list[str] | None = Field(None, min_length=1, max_length=30, description="add_tags / remove_tags")

    @field_validator("tags")
    @classmethod
    def _check_tags(cls, value: list[str] | None) -> list[str] | None:
        return clean_tag_list(value)

    @model_validator(mode="after")
    def _needs(self) -> Self:
        if self.action == "set_status" and self.status_id is None:
            raise ValueError("set_status needs status_id")
        if self.action == "set_owner" and "owner_user_id" not in self.model_fields_set:
            raise ValueError("set_owner needs owner_user_id (null to unassign)")
        if self.action in ("add_tags", "remove_tags") and not self.tags:
            raise ValueError(f"{self.action} needs tags")
        return self


class BulkDone(BaseModel):
    action: str
    matched: int = Field(description="selected leads of this business (other ids are never touched)")
    changed: int = Field(description="leads that actually changed")
