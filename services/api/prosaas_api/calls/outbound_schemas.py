"""Bodies of outbound calls: one call to a lead, and bulk runs over a selection of leads."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from prosaas_api.lead_io.schemas import BulkFilter, Id

MAX_RUN_LEADS = 10_000
RunStatusName = Literal["running", "stopping", "stopped", "completed"]


class OutboundCallIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lead_id: Id


class RunIn(BaseModel):
    """Either ``lead_ids`` (called in this order) or a lead ``filter`` (leads matching it now, by id)."""

    model_config = ConfigDict(extra="forbid")

    lead_ids: list[Id] | None = Field(None, min_length=1, max_length=MAX_RUN_LEADS)
    filter: BulkFilter | None = None

    @model_validator(mode="after")
    def _one_of(self) -> Self:
        if (self.lead_ids is None) == (self.filter is None):
            raise ValueError("give either lead_ids or filter")
        return self


class RunOut(BaseModel):
    id: int
    status: RunStatusName = Field(description="running → completed, or stopping → stopped")
    total: int = Field(description="leads selected")
    processed: int = Field(description="leads handled so far (called, failed or skipped)")
    placed: int = Field(description="calls Twilio accepted")
    failed: int = Field(description="calls Twilio refused")
    skipped: int = Field(description="leads without a phone, tagged do-not-call, or gone")
    progress: float = Field(ge=0, le=1, description="processed / total")
    selection: dict[str, Any] = Field(description="the filter used (null for an explicit list)")
    created_by_user_id: int | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


class RunPage(BaseModel):
    items: list[RunOut]
    next_before: int | None = Field(description="pass as before for the next page; null at the end")
