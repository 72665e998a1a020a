"""Webhook delivery views. The signing secret is never part of them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from prosaas_common.models.webhook import DeliveryStatus


class DeliveryOut(BaseModel):
    id: int
    event_id: int | None = Field(description="the domain event; null once the event row is purged")
    event_type: str
    url: str
    status: DeliveryStatus
    attempts: int = Field(description="POSTs made so far, across every re-send")
    next_attempt_at: datetime | None = Field(description="when a pending delivery is tried next")
    last_status_code: int | None = Field(description="HTTP status of the last answer; null if none came")
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime


class DeliveryDetail(DeliveryOut):
    payload: dict[str, Any] = Field(description="the event data, sent as `data` in the request body")


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    next_before: int | None = Field(description="pass as ?before= for the next (older) page; null at the end")
