"""/api/automations and /api/templates/preview: appointment automations of one business (managed by
owners and admins, read by every member), their validation, and deactivating or deleting one cancelling
its scheduled messages — and nothing else."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from prosaas_common.db import create_session_factory, unit_of_work
from prosaas_common.messaging.planner import plan_appointment
from tests.api.lead_helpers import MakeAccount, create_lead, error_fields, signed_in_team
from tests.api.message_helpers import add_message, made, message_status

AUTOMATIONS = "/api/automations"
GOOD = {
    "name": "Day-before reminder",
    "trigger": "before_start",
    "offset_minutes": 1440,
    "template": "Hi {first_name}, see you {date} at {time} ({calendar_name}).",
}


async def test_owners_and_admins_manage_automations_everyone_reads_them(
    client: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    team = await signed_in_team(client, make_account)
    created = await made(await client.post(AUTOMATIONS, json=GOOD, headers=team.owner))
    assert {k: created[k] for k in GOOD} == GOOD
    assert (created["channel"], created["is_active"]) == ("sms", True)
    on_booking = await made(
        await client.post(
            AUTOMATIONS,
            json={"name": "Booked", "trigger": "booked", "template": "Booked for {date}, {full_name}!"},
            headers=team.admin,
        )
    )
    assert on_booking["offset_minutes"] == 0

    listed = await made(await client.get(AUTOMATIONS, headers=team.agent), 200)
    assert [a["id"] for a in listed["items"]] == [created["id"], on_booking["id"]]
    one = f"{AUTOMATIONS}/{created['id']}"
    assert await made(await client.get(one, headers=team.agent), 200) == created

    for method, path, body in [
        ("POST", AUTOMATIONS, GOOD),
        ("PATCH", one, {"name": "x"}),
        ("DELETE", one, None),
    ]:
        response = await client.request(method, path, json=body, headers=team.agent)
        assert response.status_code == 403, (method, response.text)

    changed = await made(
        await client.patch(one, json={"name": "Two hours before", "offset_minutes": 120}, headers=team.admin),
        200,
    )
    assert (changed["name"], changed["offset_minutes"], changed["trigger"]) == (
        "Two hours before",
        120,
        "before_start",
    )
    assert changed["template"] == GOOD["template"]  # left out: kept
    assert (await client.delete(one, headers=team.owner)).status_code == 204
    assert (await client.get(one, headers=team.owner)).status_code == 404
    assert (await client.delete(one, headers=team.owner)).status_code == 404
    audit = (await client.get("/api/business/current/audit", headers=team.owner)).json()["items"]
    actions = [e["action"] for e in audit if e["action"].startswith("message_automation.")]
    assert actions == [
        "message_automation.deleted",
        "message_automation.updated",
        "message_automation.created",
        "message_automation.created",
    ]


async def test_bad_fields_are_422_naming_the_field(
    client: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    team = await signed_in_team(client, make_account)
    cases: list[tuple[dict[str, Any], str]] = [
        ({**GOOD, "name": ""}, "name"),
        ({**GOOD, "name": "x" * 101}, "name"),
        ({**GOOD, "trigger": "sometime"}, "trigger"),
        ({**GOOD, "offset_minutes": -1}, "offset_minutes"),
        ({**GOOD, "offset_minutes": 43_201}, "offset_minutes"),
        ({**GOOD, "template": ""}, "template"),
        ({**GOOD, "template": "   "}, "template"),
        ({**GOOD, "template": "x" * 1601}, "template"),
        ({**GOOD, "template": "Hi {first_name"}, "template"),
        ({**GOOD, "template": "Hi {lead.__class__}"}, "template"),
        ({**GOOD, "template": "At {time!r}"}, "template"),
        ({**GOOD, "channel": "fax"}, "channel"),
        ({**GOOD, "surprise": True}, "surprise"),
    ]
    for body, field in cases:
        response = await client.post(AUTOMATIONS, json=body, headers=team.owner)
        assert error_fields(response) == {field}, body
    assert (
        await client.post(AUTOMATIONS, json={**GOOD, "template": "x" * 1600}, headers=team.owner)
    ).status_code == 201

    unknown = await client.post(
        AUTOMATIONS, json={**GOOD, "template": "Hi {nickname} {status}"}, headers=team.owner
    )
    [error] = unknown.json()["detail"]
    assert "{nickname}" in error["msg"]
    assert "{status}" in error["msg"]
    assert "first_name" in error["msg"]
    assert "appointment_title" in error["msg"]

    whatsapp = await client.post(AUTOMATIONS, json={**GOOD, "channel": "whatsapp"}, headers=team.owner)
    assert error_fields(whatsapp) == {"channel"}
    assert "not available yet" in whatsapp.json()["detail"][0]["msg"]

    automation = await made(await client.post(AUTOMATIONS, json=GOOD, headers=team.owner))
    one = f"{AUTOMATIONS}/{automation['id']}"
    patches: list[tuple[dict[str, Any], str]] = [
        ({"name": None}, "name"),
        ({"is_active": None}, "is_active"),
        ({"channel": "whatsapp"}, "channel"),
        ({"template": "{date} {oops}"}, "template"),
        ({"offset_minutes": 50_000}, "offset_minutes"),
    ]
    for patch, field in patches:
        assert error_fields(await client.patch(one, json=patch, headers=team.owner)) == {field}, patch
    assert await made(await client.get(one, headers=team.owner), 200) == automation  # nothing changed


async def test_another_business_cannot_reach_an_automation(
    client: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    team = await signed_in_team(client, make_account)
    other = await signed_in_team(client, make_account, "bakery.example")
    automation = await made(await client.post(AUTOMATIONS, json=GOOD, headers=team.owner))
    one = f"{AUTOMATIONS}/{automation['id']}"
    for method, body in [("GET", None), ("PATCH", {"is_active": False}), ("DELETE", None)]:
        response = await client.request(method, one, json=body, headers=other.owner)
        assert response.status_code == 404, (method, response.text)
    assert (await made(await client.get(AUTOMATIONS, headers=other.owner), 200))["items"] == []
    assert await made(await client.get(one, headers=team.owner), 200) == automation


async def test_deactivating_or_deleting_cancels_only_its_scheduled_messages(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine
) -> None:
    team = await signed_in_team(client, make_account)
    other = await signed_in_team(client, make_account, "bakery.example")
    first = await made(await client.post(AUTOMATIONS, json=GOOD, headers=team.owner))
    second = await made(await client.post(AUTOMATIONS, json={**GOOD, "name": "Two"}, headers=team.owner))
    b = team.business_id
    pending = [await add_message(db_engine, b, automation_id=first["id"]) for _ in range(2)]
    in_flight = await add_message(db_engine, b, "sending", automation_id=first["id"])
    sent = await add_message(db_engine, b, "sent", automation_id=first["id"])
    of_second = await add_message(db_engine, b, automation_id=second["id"])
    # A row of another business naming this automation id must not be touched by this business's change.
    foreign = await add_message(db_engine, other.business_id, automation_id=first["id"])

    renamed = await client.patch(f"{AUTOMATIONS}/{first['id']}", json={"name": "Renamed"}, headers=team.owner)
    assert renamed.status_code == 200
    assert {await message_status(client, team.owner, m) for m in pending} == {"scheduled"}

    off = await made(
        await client.patch(f"{AUTOMATIONS}/{first['id']}", json={"is_active": False}, headers=team.owner), 200
    )
    assert off["is_active"] is False
    assert [await message_status(client, team.owner, m) for m in pending] == ["cancelled", "cancelled"]
    assert await message_status(client, team.owner, in_flight) == "sending"
    assert await message_status(client, team.owner, sent) == "sent"
    assert await message_status(client, team.owner, of_second) == "scheduled"
    assert await message_status(client, other.owner, foreign) == "scheduled"

    assert (await client.delete(f"{AUTOMATIONS}/{second['id']}", headers=team.owner)).status_code == 204
    kept = await made(await client.get(f"/api/messages/{of_second}", headers=team.owner), 200)
    assert (kept["status"], kept["automation_id"]) == ("cancelled", None)  # the row stays, unlinked
    audit = (await client.get("/api/business/current/audit", headers=team.owner)).json()["items"]
    cancelled = [e["details"]["cancelled_messages"] for e in audit if "cancelled_messages" in e["details"]]
    assert cancelled == [1, 2, 0]  # delete, deactivate, rename (newest first)


async def test_a_planned_reminder_is_cancelled_when_its_automation_is_switched_off(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine
) -> None:
    team = await signed_in_team(client, make_account)
    automation = await made(await client.post(AUTOMATIONS, json=GOOD, headers=team.owner))
    lead = await create_lead(client, team.agent, name="Ada Lovelace", phone="+14155550100")
    starts_at = (datetime.now(UTC) + timedelta(days=10)).replace(microsecond=0)
    appointment = await made(
        await client.post(
            "/api/appointments",
            json={"lead_id": lead["id"], "starts_at": starts_at.isoformat(), "duration_minutes": 30},
            headers=team.agent,
        )
    )
    async with unit_of_work(create_session_factory(db_engine)) as db:  # what the worker does on the event
        assert (await plan_appointment(db, appointment["id"], datetime.now(UTC))).created == 1
    page = await made(
        await client.get("/api/messages", params={"appointment_id": appointment["id"]}, headers=team.agent),
        200,
    )
    [message] = page["items"]
    assert (message["kind"], message["status"], message["automation_id"]) == (
        "appointment",
        "scheduled",
        automation["id"],
    )
    assert message["body"].startswith("Hi Ada, see you ")

    await made(
        await client.patch(
            f"{AUTOMATIONS}/{automation['id']}", json={"is_active": False}, headers=team.admin
        ),
        200,
    )
    assert await message_status(client, team.agent, message["id"]) == "cancelled"


async def test_template_preview_shows_the_text_and_the_problems(
    client: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    team = await signed_in_team(client, make_account)

    async def preview(template: str, kind: str = "appointment") -> dict[str, Any]:
        response = await client.post(
            "/api/templates/preview", json={"template": template, "kind": kind}, headers=team.agent
        )
        return await made(response, 200)

    good = await preview("Hi {first_name}, see you {date} at {time} at {business_name}.")
    assert good["problems"] == []
    assert good["text"].startswith("Hi Ada, see you ")
    assert good["text"].endswith(" at Business of owner@dental.example.")
    assert "appointment_title" in good["variables"]
    assert "status" not in good["variables"]
    assert (good["characters"], good["segments"]) == (len(good["text"]), 1)  # plain spaces: one GSM-7 segment
    plain = await preview("Hi {first_name}, see you {date}.")
    assert plain["text"].startswith("Hi Ada, see you ")
    assert plain["segments"] == 1

    followup = await preview("Still interested, {first_name}? You are {status}. {date}", "followup")
    assert followup["text"] == "Still interested, Ada? You are Qualified."
    assert len(followup["problems"]) == 1
    assert "{date}" in followup["problems"][0]

    broken = await preview("Hi {first_name")
    assert broken["text"] is None
    assert broken["problems"]
    long = await preview("a" * 1601)
    assert any("1600" in p for p in long["problems"])
    assert long["segments"] == 11
    assert (await preview("a" * 161))["segments"] == 2
    assert (await preview("€" * 80))["segments"] == 1  # extension characters count twice: 160
    assert (await preview("ü" * 160))["segments"] == 1  # still GSM
    assert (await preview("ש" * 71))["segments"] == 2  # UCS-2: 70 per single SMS
    assert error_fields(
        await client.post(
            "/api/templates/preview", json={"template": "x", "kind": "email"}, headers=team.agent
        )
    ) == {"kind"}
