"""``POST /webhook/outbound_call``: an answered outbound call is connected to our media stream with
``direction=outbound`` and its lead; the row is found by the ``call_id`` Twilio was given even before the
worker recorded the sid; forged requests are 403 with no side effect; over capacity the lead hears a
polite message and a hangup; the terminal status gives the outbound slot back."""

from __future__ import annotations

import httpx
from redis.asyncio import Redis
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from prosaas_calls import stream_tokens
from prosaas_common.models import BusinessSettings, Call
from prosaas_common.outbound_calls import placeholder_sid
from prosaas_common.outbound_slots import OutboundSlots
from tests.calls.conftest import PUBLIC_HOST, twilio_post
from tests.calls.test_voice_webhooks import NUMBER, a_business, a_lead, stream_of

LEAD_PHONE = "+14155550777"
SID = "CA" + "7" * 32


async def an_outbound_call(engine: AsyncEngine) -> tuple[int, int, int]:
    """(business id, lead id, call row id) of a queued outbound call whose sid the worker has not
    recorded yet."""
    business_id = await a_business(engine)
    lead_id = await a_lead(engine, business_id, LEAD_PHONE)
    async with engine.begin() as conn:
        call_id = (
            await conn.execute(
                insert(Call)
                .values(
                    business_id=business_id,
                    call_sid=placeholder_sid(),
                    direction="outbound",
                    from_number=NUMBER,
                    to_number=LEAD_PHONE,
                    lead_id=lead_id,
                    status="queued",
                )
                .returning(Call.id)
            )
        ).scalar_one()
    return business_id, int(lead_id), int(call_id)


def answered(call_sid: str = SID) -> dict[str, str]:
    return {
        "CallSid": call_sid,
        "From": NUMBER,
        "To": LEAD_PHONE,
        "Direction": "outbound-api",
        "CallStatus": "in-progress",
    }


async def the_call(engine: AsyncEngine, call_id: int) -> Call:
    async with engine.connect() as conn:
        return (await conn.execute(select(Call).where(Call.id == call_id))).one()  # type: ignore[return-value]


async def test_an_answered_call_is_connected_with_direction_and_lead(
    twilio_client: httpx.AsyncClient, db_engine: AsyncEngine, redis: Redis
) -> None:
    business_id, lead_id, call_id = await an_outbound_call(db_engine)

    response = await twilio_post(twilio_client, f"/webhook/outbound_call?call_id={call_id}", answered())

    assert response.status_code == 200
    url, parameters = stream_of(response.text)
    assert url == f"wss://{PUBLIC_HOST}/ws/twilio-media"
    token = parameters.pop("stream_token")
    assert parameters == {
        "call_sid": SID,
        "business_id": str(business_id),
        "direction": "outbound",
        "lead_id": str(lead_id),
    }
    assert await stream_tokens.redeem(redis, SID, token)
    assert (await the_call(db_engine, call_id)).call_sid == SID  # Twilio came before the worker's commit
    assert await redis.exists(f"calls:slot:{SID}")  # it holds a capacity slot like an incoming call


async def test_a_forged_request_is_refused_without_side_effect(
    twilio_client: httpx.AsyncClient, db_engine: AsyncEngine, redis: Redis
) -> None:
    _, _, call_id = await an_outbound_call(db_engine)
    path = f"/webhook/outbound_call?call_id={call_id}"

    unsigned = await twilio_client.post(path, data=answered())
    wrong_key = await twilio_post(twilio_client, path, answered(), token="not-the-token")
    # A valid signature over another call's URL does not carry over to this one.
    swapped = await twilio_post(twilio_client, f"/webhook/outbound_call?call_id={call_id + 1}", answered())
    swapped = await twilio_client.post(
        path, data=answered(), headers={"X-Twilio-Signature": swapped.request.headers["X-Twilio-Signature"]}
    )

    assert [r.status_code for r in (unsigned, wrong_key, swapped)] == [403, 403, 403]
    call = await the_call(db_engine, call_id)
    assert call.call_sid.startswith("pending:")
    assert await redis.keys("calls:*") == []


async def test_an_unknown_call_hears_an_apology(
    twilio_client: httpx.AsyncClient, db_engine: AsyncEngine
) -> None:
    await an_outbound_call(db_engine)
    response = await twilio_post(twilio_client, "/webhook/outbound_call?call_id=999999", answered())
    assert response.status_code == 200
    assert "<Hangup" in response.text
    assert "<Connect" not in response.text


async def test_over_capacity_the_lead_hears_a_polite_message_and_a_hangup(
    twilio_client: httpx.AsyncClient, db_engine: AsyncEngine, redis: Redis
) -> None:
    business_id, _, call_id = await an_outbound_call(db_engine)
    async with db_engine.begin() as conn:
        await conn.execute(insert(BusinessSettings).values(business_id=business_id, max_concurrent_calls=1))
    busy = await twilio_post(
        twilio_client,
        "/webhook/incoming_call",
        {"CallSid": "CA" + "1" * 32, "To": NUMBER, "From": "+14155550999"},
    )
    assert "<Connect" in busy.text

    response = await twilio_post(twilio_client, f"/webhook/outbound_call?call_id={call_id}", answered())

    assert response.status_code == 200
    assert "<Say>" in response.text
    assert "<Hangup" in response.text
    assert "<Connect" not in response.text
    assert "call you back" in response.text
    assert (await the_call(db_engine, call_id)).end_reason == "over_capacity:business"
    assert not await redis.exists(f"calls:stream_token:{SID}")


async def test_the_terminal_status_gives_the_outbound_slot_back(
    twilio_client: httpx.AsyncClient, db_engine: AsyncEngine, redis: Redis
) -> None:
    business_id, _, call_id = await an_outbound_call(db_engine)
    async with db_engine.begin() as conn:  # the worker placed it and recorded the sid
        await conn.execute(update(Call).where(Call.id == call_id).values(call_sid=SID))
    slots = OutboundSlots(redis)
    assert await slots.acquire(business_id, call_id, 3)

    ringing = await twilio_post(
        twilio_client, "/webhook/call_status", {"CallSid": SID, "CallStatus": "ringing"}
    )
    assert ringing.status_code == 204
    assert await slots.live(business_id) == 1
    done = await twilio_post(
        twilio_client,
        "/webhook/call_status",
        {"CallSid": SID, "CallStatus": "no-answer", "CallDuration": "0"},
    )

    assert done.status_code == 204
    assert await slots.live(business_id) == 0
    call = await the_call(db_engine, call_id)
    assert (call.status, call.end_reason) == ("no-answer", "no-answer")
