"""/api/messages and POST /api/leads/{id}/messages: the business's messages to leads (filters, keyset
pages, tenancy), cancelling only scheduled ones, and one-off SMS — from the first number, on the lead's
timeline, idempotent with an Idempotency-Key, waking the sender once per burst after the commit."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from arq.connections import ArqRedis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from prosaas_common.jobs import JobName, Queue
from prosaas_common.models import OutboundMessage
from tests.api.lead_helpers import MakeAccount, Team, create_lead, error_fields, signed_in_team
from tests.api.message_helpers import add_message, made

MESSAGES = "/api/messages"
WAKE = "messages:send_due:wake"


async def add_numbers(client: httpx.AsyncClient, team: Team, *numbers: str) -> None:
    for number in numbers:
        response = await client.post(
            "/api/business/current/phone-numbers", json={"number": number}, headers=team.owner
        )
        assert response.status_code == 201, response.text


async def wake_jobs(pool: ArqRedis) -> list[tuple[str, str]]:
    jobs = await pool.queued_jobs(queue_name=Queue.DEFAULT.value)
    return [(job.job_id or "", job.function) for job in jobs if job.function == JobName.MESSAGES_SEND_DUE]


async def message_count(engine: AsyncEngine, business_id: int) -> int:
    async with engine.connect() as conn:
        query = select(func.count()).where(OutboundMessage.business_id == business_id)
        return int((await conn.execute(query)).scalar_one())


async def test_a_one_off_sms_is_queued_from_the_first_number_and_wakes_the_sender(
    client: httpx.AsyncClient, make_account: MakeAccount, pool: ArqRedis
) -> None:
    team = await signed_in_team(client, make_account)
    await add_numbers(client, team, "+14155550177", "+14155550166")
    lead = await create_lead(client, team.owner, name="Ada Lovelace", phone="(415) 555-0100")
    assert await wake_jobs(pool) == []

    message = await made(
        await client.post(
            f"/api/leads/{lead['id']}/messages", json={"text": "Your quote is ready"}, headers=team.agent
        )
    )
    assert (message["status"], message["channel"], message["kind"]) == ("scheduled", "sms", "manual")
    assert (message["to_number"], message["from_number"]) == ("+14155550100", "+14155550177")
    assert (message["body"], message["lead_id"], message["created_by_user_id"]) == (
        "Your quote is ready",
        lead["id"],
        team.agent_user_id,
    )
    assert message["appointment_id"] is message["automation_id"] is message["followup_rule_id"] is None
    assert await wake_jobs(pool) == [(WAKE, JobName.MESSAGES_SEND_DUE)]

    timeline = (await client.get(f"/api/leads/{lead['id']}/timeline", headers=team.agent)).json()["items"]
    [entry] = [e for e in timeline if e["kind"] == "message_queued"]
    assert entry["summary"] == "SMS: Your quote is ready"
    assert entry["details"]["message_id"] == message["id"]

    # A burst of sends (without keys: each is a new message) wakes the sender once.
    others = await asyncio.gather(
        *(
            client.post(f"/api/leads/{lead['id']}/messages", json={"text": f"Note {n}"}, headers=team.owner)
            for n in range(3)
        )
    )
    assert [r.status_code for r in others] == [201, 201, 201]
    assert len({r.json()["id"] for r in others}) == 3
    assert await wake_jobs(pool) == [(WAKE, JobName.MESSAGES_SEND_DUE)]
    assert (await client.get(f"{MESSAGES}/{message['id']}", headers=team.agent)).json() == message


async def test_an_idempotency_key_makes_a_repeat_answer_the_first_message(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine
) -> None:
    team = await signed_in_team(client, make_account)
    other = await signed_in_team(client, make_account, "bakery.example")
    lead = await create_lead(client, team.owner, name="Ada", phone="+14155550100")
    second_lead = await create_lead(client, team.owner, name="Bob", phone="+14155550101")
    path = f"/api/leads/{lead['id']}/messages"
    key = {"Idempotency-Key": "retry-7f3a"}

    first = await made(await client.post(path, json={"text": "Hello"}, headers={**team.agent, **key}))
    again = await made(await client.post(path, json={"text": "Hello"}, headers={**team.owner, **key}), 200)
    assert again == first
    # Concurrent repeats: still one message.
    racing = await asyncio.gather(
        *(client.post(path, json={"text": "Hello"}, headers={**team.agent, **key}) for _ in range(4))
    )
    assert {(r.status_code, r.json()["id"]) for r in racing} == {(200, first["id"])}
    assert await message_count(db_engine, team.business_id) == 1
    timeline = (await client.get(f"/api/leads/{lead['id']}/timeline", headers=team.agent)).json()["items"]
    assert [e["kind"] for e in timeline].count("message_queued") == 1

    changed_text = await client.post(path, json={"text": "Hello again"}, headers={**team.agent, **key})
    assert changed_text.status_code == 409
    other_lead = await client.post(
        f"/api/leads/{second_lead['id']}/messages", json={"text": "Hello"}, headers={**team.agent, **key}
    )
    assert other_lead.status_code == 409

    # Keys belong to a business: another business's same key is its own message.
    theirs = await create_lead(client, other.owner, name="Cy", phone="+14155550102")
    own = await made(
        await client.post(
            f"/api/leads/{theirs['id']}/messages", json={"text": "Hello"}, headers={**other.owner, **key}
        )
    )
    assert own["id"] != first["id"]
    # Without a key every post is a new message.
    plain = [
        await made(await client.post(path, json={"text": "Hello"}, headers=team.agent)) for _ in range(2)
    ]
    assert len({m["id"] for m in plain} | {first["id"]}) == 3
    bad_key = await client.post(
        path, json={"text": "Hello"}, headers={**team.agent, "Idempotency-Key": "x" * 129}
    )
    assert error_fields(bad_key) == {"Idempotency-Key"}


async def test_a_one_off_sms_needs_a_phone_and_a_text(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine, pool: ArqRedis
) -> None:
    team = await signed_in_team(client, make_account)
    other = await signed_in_team(client, make_account, "bakery.example")
    lead = await create_lead(client, team.owner, name="Ada", phone="+14155550100")
    no_phone = await create_lead(client, team.owner, name="Bob", email="bob@example.com")
    path = f"/api/leads/{lead['id']}/messages"

    missing = await client.post(
        f"/api/leads/{no_phone['id']}/messages", json={"text": "Hi"}, headers=team.agent
    )
    assert error_fields(missing) == {"lead_id"}
    assert "no phone" in missing.json()["detail"][0]["msg"]
    for body in ({"text": ""}, {"text": "   "}, {"text": "x" * 1601}, {}, {"text": "Hi", "to": "+1"}):
        assert error_fields(await client.post(path, json=body, headers=team.agent)), body
    foreign = await client.post(path, json={"text": "Hi"}, headers=other.owner)
    assert foreign.status_code == 404
    assert await message_count(db_engine, team.business_id) == 0
    assert await wake_jobs(pool) == []  # nothing committed, nothing woken

    longest = await made(await client.post(path, json={"text": "x" * 1600}, headers=team.agent))
    assert longest["from_number"] is None  # a business without numbers: the sender decides


async def test_lists_filter_and_page_newest_first_within_the_business(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine
) -> None:
    team = await signed_in_team(client, make_account)
    other = await signed_in_team(client, make_account, "bakery.example")
    ada = await create_lead(client, team.owner, name="Ada", phone="+14155550100")
    bob = await create_lead(client, team.owner, name="Bob", phone="+14155550101")
    appointment = await made(
        await client.post(
            "/api/appointments",
            json={"lead_id": ada["id"], "starts_at": "2027-02-01T10:00:00Z", "duration_minutes": 30},
            headers=team.agent,
        )
    )
    b = team.business_id
    reminder = await add_message(db_engine, b, lead_id=ada["id"], appointment_id=appointment["id"])
    followup = await add_message(db_engine, b, "sent", key="followup", lead_id=ada["id"])
    to_bob = await add_message(db_engine, b, "failed", lead_id=bob["id"])
    manual = await made(
        await client.post(f"/api/leads/{bob['id']}/messages", json={"text": "Hi"}, headers=team.agent)
    )
    await add_message(db_engine, other.business_id)

    everything = await made(await client.get(MESSAGES, headers=team.agent), 200)
    assert [m["id"] for m in everything["items"]] == [manual["id"], to_bob, followup, reminder]
    assert [m["kind"] for m in everything["items"]] == ["manual", "appointment", "followup", "appointment"]
    assert everything["next_before"] is None

    first = await made(await client.get(MESSAGES, params={"limit": 3}, headers=team.agent), 200)
    assert ([m["id"] for m in first["items"]], first["next_before"]) == (
        [manual["id"], to_bob, followup],
        followup,
    )
    rest = await made(
        await client.get(MESSAGES, params={"limit": 3, "before": followup}, headers=team.agent), 200
    )
    assert ([m["id"] for m in rest["items"]], rest["next_before"]) == ([reminder], None)

    async def ids(**params: Any) -> list[int]:
        page = await made(await client.get(MESSAGES, params=params, headers=team.agent), 200)
        return [m["id"] for m in page["items"]]

    assert await ids(lead_id=ada["id"]) == [followup, reminder]
    assert await ids(appointment_id=appointment["id"]) == [reminder]
    assert await ids(status="scheduled") == [manual["id"], reminder]
    assert await ids(status=["sent", "failed"]) == [to_bob, followup]
    assert await ids(lead_id=bob["id"], status="failed") == [to_bob]
    for params in ({"status": "lost"}, {"lead_id": 0}, {"limit": 201}, {"before": "x"}):
        assert error_fields(await client.get(MESSAGES, params=params, headers=team.agent)), params

    # Another business sees only its own message, and none of these by id or filter.
    theirs = await made(await client.get(MESSAGES, headers=other.owner), 200)
    assert len(theirs["items"]) == 1
    assert theirs["items"][0]["id"] not in {reminder, followup, to_bob}
    assert (await made(await client.get(MESSAGES, params={"lead_id": ada["id"]}, headers=other.owner), 200))[
        "items"
    ] == []
    assert (await client.get(f"{MESSAGES}/{reminder}", headers=other.owner)).status_code == 404


async def test_only_a_scheduled_message_can_be_cancelled(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine
) -> None:
    team = await signed_in_team(client, make_account)
    other = await signed_in_team(client, make_account, "bakery.example")
    lead = await create_lead(client, team.owner, name="Ada", phone="+14155550100")
    scheduled = await add_message(db_engine, team.business_id, lead_id=lead["id"], body="See you soon")
    cancel = f"{MESSAGES}/{scheduled}/cancel"

    assert (await client.post(cancel, headers=other.owner)).status_code == 404
    done = await made(await client.post(cancel, headers=team.agent), 200)
    assert done["status"] == "cancelled"
    timeline = (await client.get(f"/api/leads/{lead['id']}/timeline", headers=team.agent)).json()["items"]
    [entry] = [e for e in timeline if e["kind"] == "message_cancelled"]
    assert entry["details"] == {"message_id": scheduled}
    assert "See you soon" in entry["summary"]

    again = await client.post(cancel, headers=team.agent)
    assert again.status_code == 409
    assert again.json()["detail"]["status"] == "cancelled"
    assert "cancelled" in again.json()["detail"]["message"]
    for status in ("sending", "sent", "delivered", "undelivered", "failed"):
        message_id = await add_message(db_engine, team.business_id, status)
        response = await client.post(f"{MESSAGES}/{message_id}/cancel", headers=team.owner)
        assert response.status_code == 409, status
        assert response.json()["detail"]["status"] == status
        assert (await client.get(f"{MESSAGES}/{message_id}", headers=team.owner)).json()["status"] == status


async def test_a_send_after_a_finished_run_wakes_the_sender_again(
    client: httpx.AsyncClient, make_account: MakeAccount, pool: ArqRedis
) -> None:
    """arq keeps a finished job's result under its id and drops a new job with that id meanwhile: the
    wake must not be lost to the result of the previous wake-up."""
    team = await signed_in_team(client, make_account)
    await add_numbers(client, team, "+14155550177")
    lead = await create_lead(client, team.owner, name="Ada Lovelace", phone="(415) 555-0100")
    await pool.set(f"arq:result:{WAKE}", b"the previous run's result")

    await made(
        await client.post(f"/api/leads/{lead['id']}/messages", json={"text": "Hi"}, headers=team.agent)
    )

    assert await wake_jobs(pool) == [(WAKE, JobName.MESSAGES_SEND_DUE)]
