"""Helpers of the messages-to-leads API tests: checked responses and messages as the worker plans them."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import func, insert
from sqlalchemy.ext.asyncio import AsyncEngine

from prosaas_common.models import OutboundMessage


async def made(response: httpx.Response, status: int = 201) -> dict[str, Any]:
    assert response.status_code == status, response.text
    data: dict[str, Any] = response.json()
    return data


async def add_message(
    engine: AsyncEngine, business_id: int, status: str = "scheduled", key: str = "appointment", **values: Any
) -> int:
    """A message as the worker plans it (planning is not the API's part); ``key`` is its dedup-key kind."""
    async with engine.begin() as conn:
        row = await conn.execute(
            insert(OutboundMessage)
            .values(
                business_id=business_id,
                dedup_key=f"{key}:test:{uuid.uuid4().hex}",
                to_number="+14155550100",
                status=status,
                send_at=func.now(),
                **{"body": "Hello", **values},
            )
            .returning(OutboundMessage.id)
        )
        return int(row.scalar_one())


async def message_status(client: httpx.AsyncClient, headers: dict[str, str], message_id: int) -> str:
    response = await made(await client.get(f"/api/messages/{message_id}", headers=headers), 200)
    return str(response["status"])
