"""Twilio voice webhooks: a call to a business's number gets TwiML connecting it to our media stream
(with the call's parameters and a one-time token) and a ``calls`` row; an unknown number hears an
apology — never another business's agent; forged requests are 403 with no side effect; status callbacks
move the call forward only."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import httpx
from arq.connections import ArqRedis
from redis.asyncio import Redis
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from prosaas_calls import stream_tokens
from prosaas_common.jobs import Queue
from prosaas_common.models import Business, BusinessPhoneNumber, BusinessSettings, Call, Lead, LeadStatus
from tests.calls.conftest import PUBLIC_HOST, twilio_post

NUMBER = "+14155550123"
CALLER = "+14155550999"


async def a_business(engine: AsyncEngine, *, number: str = NUMBER, active: bool = True) -> int:
    async with engine.begin() as conn:
        business_id = (
            await conn.execute(
                insert(Business).values(name="Dental", is_active=active).returning(Business.id)
            )
        ).scalar_one()
        await conn.execute(insert(BusinessPhoneNumber).values(business_id=business_id, e164=number))
        return int(business_id)


async def calls(engine: AsyncEngine) -> list[Call]:
    async with engine.connect() as conn:
        return list((await conn.execute(select(Call).order_by(Call.id))).all())  # type: ignore[arg-type]


def incoming(call_sid: str = "CA" + "1" * 32, to: str = NUMBER, caller: str = CALLER) -> dict[str, str]:
    return {"CallSid": call_sid, "To": to, "From": caller, "Direction": "inbound", "CallStatus": "ringing"}


def stream_of(twiml: str) -> tuple[str, dict[str, str]]:
    root = ET.fromstring(twiml)  # noqa: S314 - our own TwiML
    stream = root.find("./Connect/Stream")
    assert stream is not None, twiml
    return stream.attrib["url"], {p.attrib["name"]: p.attrib["value"] for p in stream.findall("Parameter")}


async def a_lead(engine: AsyncEngine, business_id: int, phone: str) -> int:
    """A lead with ``phone`` in the business's (new) default status."""
    async with engine.begin() as conn:
        status_id = (
            await conn.execute(
                insert(LeadStatus)
                .values(business_id=business_id, key="new", name="New", position=0, is_default=True)
                .returning(LeadStatus.id)
            )
        ).scalar_one()
        return int(
            (
                await conn.execute(
                    insert(Lead)
                    .values(business_id=business_id, status_id=status_id, rank=1, phone=phone)
                    .returning(Lead.id)
                )
            ).scalar_one()
        )


async def test_a_call_to_a_business_is_connected_to_the_media_stream(
    twilio_client: httpx.AsyncClient, db_engine: AsyncEngine, redis: Redis
) -> None:
    business_id = await a_business(db_engine)
    lead_id = await a_lead(db_engine, business_id, CALLER)

    response = await twilio_post(twilio_client, "/webhook/incoming_call", incoming())

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    url, parameters = stream_of(response.text)
    assert url == f"wss://{PUBLIC_HOST}/ws/twilio-media"
    assert {k: v for k, v in parameters.items() if k != "stream_token"} == {
        "call_sid": "CA" + "1" * 32,
        "business_id": str(business_id),
        "direction": "inbound",
        "lead_id": str(lead_id),
    }
    [call] = await calls(db_engine)
    assert (
        call.business_id,
        call.direction,
        call.from_number,
        call.to_number,
        call.status,
        call.lead_id,
    ) == (
        business_id,
        "inbound",
        CALLER,
        NUMBER,
        "ringing",
        lead_id,
    )
    token = parameters["stream_token"]
    assert not await stream_tokens.redeem(redis, call.call_sid, "a guess")  # a wrong token burns it …
    response = await twilio_post(twilio_client, "/webhook/incoming_call", incoming())  # … a retry issues anew
    _, again = stream_of(response.text)
    assert len(await calls(db_engine)) == 1  # Twilio's retry finds the same call
    assert await stream_tokens.redeem(redis, call.call_sid, again["stream_token"])
    assert not await stream_tokens.redeem(redis, call.call_sid, again["stream_token"])  # once only
    assert again["stream_token"] != token


async def test_an_unknown_or_inactive_number_hears_an_apology_and_no_one_else_answers(
    twilio_client: httpx.AsyncClient, db_engine: AsyncEngine, redis: Redis
) -> None:
    await a_business(db_engine)  # another business exists: it must not pick up
    await a_business(db_engine, number="+14155550124", active=False)

    for to in ("+14155550000", "+14155550124", ""):
        response = await twilio_post(twilio_client, "/webhook/incoming_call", incoming(to=to))
        assert response.status_code == 200
        root = ET.fromstring(response.text)  # noqa: S314 - our own TwiML
        assert [child.tag for child in root] == ["Say", "Hangup"]
        assert root.find("Connect") is None

    assert await calls(db_engine) == []
    assert [key async for key in redis.scan_iter("calls:stream_token:*")] == []


async def test_forged_or_unsigned_webhooks_are_refused_without_side_effects(
    twilio_client: httpx.AsyncClient, db_engine: AsyncEngine, redis: Redis
) -> None:
    await a_business(db_engine)
    forged = await twilio_post(twilio_client, "/webhook/incoming_call", incoming(), token="not-the-token")
    unsigned = await twilio_client.post("/webhook/incoming_call", data=incoming())
    tampered_sig = (await twilio_post(twilio_client, "/webhook/call_status", incoming())).request.headers[
        "X-Twilio-Signature"
    ]
    tampered = await twilio_client.post(
        "/webhook/incoming_call",
        data=incoming(caller="+14155550000"),
        headers={"X-Twilio-Signature": tampered_sig},
    )

    assert [r.status_code for r in (forged, unsigned, tampered)] == [403, 403, 403]
    assert await calls(db_engine) == []
    assert [key async for key in redis.scan_iter("calls:stream_token:*")] == []


async def test_status_callbacks_move_the_call_forward_only(
    twilio_client: httpx.AsyncClient, db_engine: AsyncEngine, pool: ArqRedis
) -> None:
    await a_business(db_engine)
    await twilio_post(twilio_client, "/webhook/incoming_call", incoming())
    sid = "CA" + "1" * 32

    async def status(value: str, **extra: str) -> int:
        form = {"CallSid": sid, "CallStatus": value} | extra
        return (await twilio_post(twilio_client, "/webhook/call_status", form)).status_code

    assert await status("in-progress") == 204
    assert await status("ringing") == 204  # late: ignored
    [call] = await calls(db_engine)
    assert (call.status, call.answered_at is not None) == ("in-progress", True)

    assert await pool.zcard(Queue.HIGH.value) == 0
    assert await status("completed", CallDuration="42") == 204
    assert [job.job_id for job in await pool.queued_jobs(queue_name=Queue.HIGH.value)] == [
        f"call-finalize:{sid}"
    ]
    assert await status("in-progress") == 204  # after the end: ignored
    [call] = await calls(db_engine)
    assert (call.status, call.duration_s, call.end_reason) == ("completed", 42, "completed")
    assert call.ended_at is not None

    unknown = {"CallSid": "CA" + "9" * 32, "CallStatus": "completed"}
    assert (await twilio_post(twilio_client, "/webhook/call_status", unknown)).status_code == 204


async def test_stream_status_records_the_stream_sid(
    twilio_client: httpx.AsyncClient, db_engine: AsyncEngine
) -> None:
    await a_business(db_engine)
    await twilio_post(twilio_client, "/webhook/incoming_call", incoming())
    form = {"CallSid": "CA" + "1" * 32, "StreamSid": "MZ" + "3" * 32, "StreamEvent": "stream-started"}

    assert (await twilio_post(twilio_client, "/webhook/stream_status", form)).status_code == 204

    [call] = await calls(db_engine)
    assert call.stream_sid == "MZ" + "3" * 32


async def test_over_capacity_callers_hear_busy_and_a_finished_call_frees_its_slot(
    twilio_client: httpx.AsyncClient, db_engine: AsyncEngine, redis: Redis
) -> None:
    business_id = await a_business(db_engine)
    async with db_engine.begin() as conn:
        await conn.execute(insert(BusinessSettings).values(business_id=business_id, max_concurrent_calls=1))
    first, second, third = ("CA" + str(n) * 32 for n in (1, 2, 3))

    async def ring(sid: str) -> list[str]:
        response = await twilio_post(twilio_client, "/webhook/incoming_call", incoming(call_sid=sid))
        return [child.tag for child in ET.fromstring(response.text)]  # noqa: S314 - our own TwiML

    assert await ring(first) == ["Connect"]
    assert await ring(second) == ["Say", "Hangup"]
    assert await ring(first) == ["Connect"]  # Twilio's retry keeps its slot
    assert await redis.get("calls:active_count") in (b"1", "1")

    form = {"CallSid": first, "CallStatus": "completed", "CallDuration": "30"}
    await twilio_post(twilio_client, "/webhook/call_status", form)
    assert await ring(third) == ["Connect"]

    reasons = {call.call_sid: call.end_reason for call in await calls(db_engine)}
    assert reasons == {first: "completed", second: "over_capacity:business", third: None}
