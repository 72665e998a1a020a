"""Bodies of /api/intake-endpoints and answers of the public /api/webhook/leads/{id}."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated

from fastapi import HTTPException
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from prosaas_api.ids import MAX_ROW_ID

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
SOURCE = re.compile(r"^[a-z0-9][a-z0-9_.:-]*$")


def _source(value: str) -> str:
    if not SOURCE.match(value):
        raise ValueError("letters, digits and _ . : - only, starting with a letter or digit")
    return value


# Lower-cased first, then checked (a pattern constraint would see the text before lower-casing).
Source = Annotated[
    str,
    StringConstraints(strip_whitespace=True, to_lower=True, min_length=1, max_length=50),
    AfterValidator(_source),
]
StatusId = Annotated[
    int, Field(gt=0, le=MAX_ROW_ID, description="lead status new leads land in; null: the default one")
]


def field_errors(errors: list[tuple[str | None, str]]) -> HTTPException:
    """A 422 shaped like FastAPI's own validation errors: ``loc`` is ``["body", key]``."""
    return HTTPException(
        status_code=422,
        detail=[
            {"loc": ["body", key] if key else ["body"], "msg": message, "type": "value_error"}
            for key, message in errors
        ],
    )


class IntakeEndpointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    target_status_id: StatusId | None = None
    source: Source = Field("webhook", description="the `source` of the leads it creates")


class IntakeEndpointUpdate(BaseModel):
    """Fields left out stay as they are; ``target_status_id: null`` means the default status."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    target_status_id: StatusId | None = None
    source: Source | None = None
    is_active: bool | None = None

    @field_validator("name", "source", "is_active")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("may be left out but not null")
        return value


class IntakeEndpointOut(BaseModel):
    id: uuid.UUID
    name: str
    url_path: str = Field(description="where to POST leads: /api/webhook/leads/{id}")
    url: str = Field(description="url_path on APP_URL")
    target_status_id: int | None
    source: str
    is_active: bool
    last_used_at: datetime | None
    created_at: datetime


class IntakeEndpointWithSecret(IntakeEndpointOut):
    secret: str = Field(description="send as the X-Webhook-Secret header; shown only this once")


class IntakeEndpointList(BaseModel):
    items: list[IntakeEndpointOut]
    max_endpoints: int


class IntakeAccepted(BaseModel):
    lead_id: int | None = Field(description="null only when a duplicate's lead was deleted since")
    created: bool = Field(description="true when this post created the lead (201)")
    duplicate: bool = Field(description="true when the external id was seen before: nothing changed")
