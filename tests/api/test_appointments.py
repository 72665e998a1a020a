"""/api/appointments: booking, clashes (409 naming the appointment in the way, also under 10
concurrent posts), rescheduling, cancelling, tenancy, lead timeline entries and domain events."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.api.lead_helpers import MakeAccount, create_lead, error_fields, signed_in_team

SLOT = {"starts_at": "2027-02-01T10:00:00Z", "duration_minutes": 30}


async def book(client: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> httpx.Response:
    return await client.post("/api/appointments", json={**SLOT, **body}, headers=headers)


async def events(db_engine: AsyncEngine, business_id: int) -> list[tuple[str, int]]:
    async with db_engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT type, (payload->>'id')::bigint FROM domain_events"
                " WHERE business_id = :b AND type LIKE 'appointment.%' ORDER BY id"
            ),
            {"b": business_id},
        )
        return [(row[0], row[1]) for row in rows]


async def timeline_kinds(client: httpx.AsyncClient, headers: dict[str, str], lead_id: int) -> list[str]:
    response = await client.get(f"/api/leads/{lead_id}/timeline", headers=headers)
    assert response.status_code == 200, response.text
    return [item["kind"] for item in response.json()["items"] if item["kind"].startswith("appointment_")]


async def test_book_read_and_list(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine
) -> None:
    team = await signed_in_team(client, make_account)
    lead = await create_lead(client, team.agent, name="Ada Lovelace", phone="+14155550100")
    response = await book(client, team.agent, lead_id=lead["id"], title="Cleaning", notes="first visit")
    assert response.status_code == 201, response.text
    made = response.json()
    assert made["starts_at"] == "2027-02-01T10:00:00Z"
    assert made["ends_at"] == "2027-02-01T10:30:00Z"
    assert (made["status"], made["lead_id"], made["title"]) == ("scheduled", lead["id"], "Cleaning")
    assert made["created_by_user_id"] == team.agent_user_id
    [main] = (await client.get("/api/calendars", headers=team.agent)).json()
    assert made["calendar_id"] == main["id"]  # the default calendar
    assert (await client.get(f"/api/appointments/{made['id']}", headers=team.agent)).json() == made

    by_end = await book(
        client,
        team.agent,
        starts_at="2027-02-01T12:00:00+01:00",
        duration_minutes=None,
        ends_at="2027-02-01T12:45:00+01:00",
    )
    assert by_end.status_code == 201, by_end.text
    assert (by_end.json()["starts_at"], by_end.json()["ends_at"]) == (
        "2027-02-01T11:00:00Z",
        "2027-02-01T11:45:00Z",
    )

    listed = await client.get(
        "/api/appointments",
        params={"from": "2027-02-01T00:00:00Z", "to": "2027-02-02T00:00:00Z"},
        headers=team.agent,
    )
    assert [a["id"] for a in listed.json()["items"]] == [made["id"], by_end.json()["id"]]
    assert listed.json()["next_cursor"] is None
    for_lead = await client.get("/api/appointments", params={"lead_id": lead["id"]}, headers=team.agent)
    assert [a["id"] for a in for_lead.json()["items"]] == [made["id"]]
    first_page = await client.get("/api/appointments", params={"limit": 1}, headers=team.agent)
    assert [a["id"] for a in first_page.json()["items"]] == [made["id"]]
    second_page = await client.get(
        "/api/appointments",
        params={"limit": 1, "cursor": first_page.json()["next_cursor"]},
        headers=team.agent,
    )
    assert [a["id"] for a in second_page.json()["items"]] == [by_end.json()["id"]]
    assert error_fields(
        await client.get("/api/appointments", params={"cursor": "nonsense"}, headers=team.agent)
    ) == {"cursor"}

    assert await timeline_kinds(client, team.agent, lead["id"]) == ["appointment_booked"]
    assert await events(db_engine, team.business_id) == [
        ("appointment.created", made["id"]),
        ("appointment.created", by_end.json()["id"]),
    ]


async def test_a_clash_answers_409_naming_the_appointment(
    client: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    team = await signed_in_team(client, make_account)
    first = (await book(client, team.agent)).json()
    clash = await book(client, team.admin, starts_at="2027-02-01T10:15:00Z", duration_minutes=60)
    assert clash.status_code == 409
    detail = clash.json()["detail"]
    assert detail["clash"] == {
        "starts_at": first["starts_at"],
        "ends_at": first["ends_at"],
        "appointment_id": first["id"],
    }
    assert "overlaps" in detail["message"]
    # Back to back is no clash; another calendar never clashes.
    assert (await book(client, team.agent, starts_at="2027-02-01T10:30:00Z")).status_code == 201
    assert (await book(client, team.agent, starts_at="2027-02-01T09:30:00Z")).status_code == 201
    other = await client.post("/api/calendars", json={"name": "Room 2"}, headers=team.owner)
    assert (await book(client, team.agent, calendar_id=other.json()["id"])).status_code == 201
    # Cancelling frees the slot.
    cancelled = await client.post(f"/api/appointments/{first['id']}/cancel", headers=team.agent)
    assert cancelled.json()["status"] == "cancelled"
    assert (await book(client, team.agent)).status_code == 201
    # Un-cancelling into a taken slot is a clash too.
    back = await client.patch(
        f"/api/appointments/{first['id']}", json={"status": "scheduled"}, headers=team.agent
    )
    assert back.status_code == 409


async def test_reschedule_update_and_cancel(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine
) -> None:
    team = await signed_in_team(client, make_account)
    lead = await create_lead(client, team.agent, name="Grace Hopper", phone="+14155550101")
    made = (await book(client, team.agent, lead_id=lead["id"])).json()
    blocker = (await book(client, team.agent, starts_at="2027-02-01T14:00:00Z")).json()

    moved = await client.patch(
        f"/api/appointments/{made['id']}", json={"starts_at": "2027-02-02T09:00:00Z"}, headers=team.agent
    )
    assert moved.status_code == 200, moved.text
    assert (moved.json()["starts_at"], moved.json()["ends_at"]) == (
        "2027-02-02T09:00:00Z",
        "2027-02-02T09:30:00Z",
    )
    longer = await client.patch(
        f"/api/appointments/{made['id']}", json={"duration_minutes": 90, "title": "Long"}, headers=team.agent
    )
    assert (longer.json()["ends_at"], longer.json()["title"]) == ("2027-02-02T10:30:00Z", "Long")

    onto = await client.patch(
        f"/api/appointments/{made['id']}", json={"starts_at": "2027-02-01T13:45:00Z"}, headers=team.agent
    )
    assert onto.status_code == 409
    assert onto.json()["detail"]["clash"]["appointment_id"] == blocker["id"]
    kept = (await client.get(f"/api/appointments/{made['id']}", headers=team.agent)).json()
    assert kept["starts_at"] == "2027-02-02T09:00:00Z"

    confirmed = await client.patch(
        f"/api/appointments/{made['id']}", json={"status": "confirmed"}, headers=team.agent
    )
    assert confirmed.json()["status"] == "confirmed"
    assert error_fields(
        await client.patch(f"/api/appointments/{made['id']}", json={"status": "maybe"}, headers=team.agent)
    ) == {"status"}
    cancelled = await client.post(f"/api/appointments/{made['id']}/cancel", headers=team.agent)
    assert cancelled.json()["status"] == "cancelled"
    again = await client.post(f"/api/appointments/{made['id']}/cancel", headers=team.agent)
    assert again.status_code == 200

    assert await timeline_kinds(client, team.agent, lead["id"]) == [
        "appointment_cancelled",
        "appointment_updated",
        "appointment_rescheduled",
        "appointment_rescheduled",
        "appointment_booked",
    ]
    mine = [kind for kind, ident in await events(db_engine, team.business_id) if ident == made["id"]]
    assert mine == [
        "appointment.created",
        "appointment.updated",
        "appointment.updated",
        "appointment.updated",
        "appointment.cancelled",
    ]


async def test_bodies_are_validated(client: httpx.AsyncClient, make_account: MakeAccount) -> None:
    team = await signed_in_team(client, make_account)
    assert error_fields(await book(client, team.agent, starts_at="2027-02-01T10:00:00")) == {"starts_at"}
    assert (await book(client, team.agent, ends_at="2027-02-01T11:00:00Z")).status_code == 422
    assert (await book(client, team.agent, duration_minutes=None)).status_code == 422
    assert (
        await book(client, team.agent, duration_minutes=None, ends_at="2027-02-01T09:00:00Z")
    ).status_code == 422
    assert error_fields(await book(client, team.agent, duration_minutes=0)) == {"duration_minutes"}
    assert error_fields(await book(client, team.agent, room="1")) == {"room"}
    made = (await book(client, team.agent)).json()
    backwards = await client.patch(
        f"/api/appointments/{made['id']}", json={"ends_at": "2027-02-01T09:00:00Z"}, headers=team.agent
    )
    assert error_fields(backwards) == {"ends_at"}


async def test_other_businesses_ids(client: httpx.AsyncClient, make_account: MakeAccount) -> None:
    a = await signed_in_team(client, make_account, domain="a.example")
    b = await signed_in_team(client, make_account, domain="b.example")
    a_lead = await create_lead(client, a.agent, name="A lead", phone="+14155550102")
    [a_calendar] = (await client.get("/api/calendars", headers=a.agent)).json()
    assert error_fields(await book(client, b.agent, lead_id=a_lead["id"])) == {"lead_id"}
    assert error_fields(await book(client, b.agent, calendar_id=a_calendar["id"])) == {"calendar_id"}
    a_made = (await book(client, a.agent)).json()
    assert (await book(client, b.agent)).status_code == 201  # B's own calendar: no clash with A
    for method, path in (("GET", ""), ("PATCH", ""), ("POST", "/cancel")):
        response = await client.request(
            method,
            f"/api/appointments/{a_made['id']}{path}",
            json={} if method == "PATCH" else None,
            headers=b.owner,
        )
        assert response.status_code == 404, (method, path)
    b_made = (await book(client, b.agent, starts_at="2027-03-01T10:00:00Z")).json()
    relink = await client.patch(
        f"/api/appointments/{b_made['id']}", json={"lead_id": a_lead["id"]}, headers=b.agent
    )
    assert error_fields(relink) == {"lead_id"}
    assert (await client.get("/api/appointments", headers=b.agent)).json()["items"][0]["id"] != a_made["id"]


async def test_ten_concurrent_bookings_of_one_slot_make_one_appointment(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine
) -> None:
    team = await signed_in_team(client, make_account)
    responses = await asyncio.gather(*(book(client, team.agent, title=f"try {n}") for n in range(10)))
    codes = sorted(r.status_code for r in responses)
    assert codes == [201] + [409] * 9, [r.text for r in responses]
    winner = next(r.json() for r in responses if r.status_code == 201)
    for response in responses:
        if response.status_code == 409:
            assert response.json()["detail"]["clash"]["appointment_id"] == winner["id"]
    async with db_engine.connect() as conn:
        count = await conn.scalar(
            text("SELECT count(*) FROM appointments WHERE business_id = :b"), {"b": team.business_id}
        )
    assert count == 1
