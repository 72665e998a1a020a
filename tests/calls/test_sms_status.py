"""Twilio's SMS status callbacks: a signed callback records the delivery status on our message (never
moving it backwards); a forged or unsigned one is 403 and changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from prosaas_common.models import Business, OutboundMessage
from tests.calls.conftest import TWILIO_TOKEN, twilio_post


async def a_message(engine: AsyncEngine, **values: object) -> int:
    async with engine.begin() as conn:
        business_id = (
            await conn.execute(insert(Business).values(name="Shop").returning(Business.id))
        ).scalar_one()
        row = {
            "business_id": business_id,
            "dedup_key": "m1",
            "to_number": "+447700900123",
            "from_number": "+14155550000",
            "body": "Hello",
            "send_at": datetime.now(UTC),
            "status": "sent",
            "provider_sid": "SM" + "a" * 32,
        } | values
        return (
            await conn.execute(insert(OutboundMessage).values(row).returning(OutboundMessage.id))
        ).scalar_one()


async def row_of(engine: AsyncEngine, message_id: int) -> OutboundMessage:
    async with engine.connect() as conn:
        return (await conn.execute(select(OutboundMessage).where(OutboundMessage.id == message_id))).one()  # type: ignore[return-value]


async def callback(
    client: httpx.AsyncClient, message_id: int, status: str, *, token: str = TWILIO_TOKEN, **extra: str
) -> httpx.Response:
    form = {"MessageSid": "SM" + "a" * 32, "MessageStatus": status, "AccountSid": "AC" + "2" * 32} | extra
    return await twilio_post(client, f"/webhook/sms_status?message_id={message_id}", form, token=token)


async def test_delivery_is_recorded(twilio_client: httpx.AsyncClient, db_engine: AsyncEngine) -> None:
    message_id = await a_message(db_engine)

    response = await callback(twilio_client, message_id, "delivered")

    assert response.status_code == 204
    row = await row_of(db_engine, message_id)
    assert (row.status, row.provider_status) == ("delivered", "delivered")
    assert row.delivered_at is not None


async def test_a_late_sent_callback_does_not_undo_delivered(
    twilio_client: httpx.AsyncClient, db_engine: AsyncEngine
) -> None:
    message_id = await a_message(db_engine)
    await callback(twilio_client, message_id, "delivered")
    await callback(twilio_client, message_id, "sent")

    assert (await row_of(db_engine, message_id)).status == "delivered"


async def test_a_callback_before_the_worker_recorded_the_send(
    twilio_client: httpx.AsyncClient, db_engine: AsyncEngine
) -> None:
    message_id = await a_message(db_engine, status="sending", provider_sid=None)

    await callback(twilio_client, message_id, "undelivered", ErrorCode="30003")

    row = await row_of(db_engine, message_id)
    assert (row.status, row.provider_sid, row.last_error) == (
        "undelivered",
        "SM" + "a" * 32,
        "Twilio error 30003",
    )


@pytest.mark.parametrize("signature", ["", "forged", None])
async def test_unsigned_or_forged_callbacks_are_refused_without_effect(
    twilio_client: httpx.AsyncClient, db_engine: AsyncEngine, signature: str | None
) -> None:
    message_id = await a_message(db_engine)
    if signature is None:  # signed with another account's token
        response = await callback(twilio_client, message_id, "failed", token="someone-elses-token")
    else:
        response = await twilio_client.post(
            f"/webhook/sms_status?message_id={message_id}",
            data={"MessageSid": "SM" + "a" * 32, "MessageStatus": "failed"},
            headers={"X-Twilio-Signature": signature} if signature else {},
        )

    assert response.status_code == 403
    row = await row_of(db_engine, message_id)
    assert (row.status, row.provider_status) == ("sent", None)


async def test_without_a_configured_token_every_callback_is_refused(
    client: httpx.AsyncClient, db_engine: AsyncEngine
) -> None:
    message_id = await a_message(db_engine)
    assert (await callback(client, message_id, "delivered")).status_code == 403


async def test_a_callback_for_another_sid_changes_nothing(
    twilio_client: httpx.AsyncClient, db_engine: AsyncEngine
) -> None:
    message_id = await a_message(db_engine, provider_sid="SM" + "b" * 32)
    assert (await callback(twilio_client, message_id, "delivered")).status_code == 204
    assert (await row_of(db_engine, message_id)).status == "sent"
