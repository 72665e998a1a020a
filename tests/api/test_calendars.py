"""/api/calendars and /api/calendar/availability: validation, one default, deletion rules, and free
slots read in the business's time zone (across a DST change) that disappear once booked."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from tests.api.lead_helpers import MakeAccount, Team, error_fields, signed_in_team

BERLIN_HOURS = {"fri": [["09:00", "11:00"]], "mon": [["09:00", "11:00"]], "sun": [], "sat": []}


def spring_forward_sunday() -> date:
    """The next last Sunday of March (Europe's spring-forward day), a year or less ahead."""
    year = datetime.now(UTC).year + 1
    day = date(year, 3, 31)
    return day - timedelta(days=(day.weekday() + 1) % 7)


async def calendars(client: httpx.AsyncClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    response = await client.get("/api/calendars", headers=headers)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()
    return data


async def create(client: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    response = await client.post("/api/calendars", json={"name": "Room 2", **body}, headers=headers)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


async def test_every_business_has_a_default_calendar(
    client: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    team = await signed_in_team(client, make_account)
    [main] = await calendars(client, team.agent)
    assert main["is_default"] is True
    assert main["weekly_hours"]["mon"] == [["09:00", "17:00"]]
    assert main["weekly_hours"]["sat"] == []
    assert (await client.get(f"/api/calendars/{main['id']}", headers=team.agent)).json() == main


async def test_weekly_hours_and_dates_are_validated(
    client: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    team = await signed_in_team(client, make_account)
    bad: list[dict[str, Any]] = [
        {"weekly_hours": {"monday": [["09:00", "17:00"]]}},
        {"weekly_hours": {"mon": [["9:00", "17:00"]]}},
        {"weekly_hours": {"mon": [["17:00", "09:00"]]}},
        {"weekly_hours": {"mon": [["09:00", "12:00"], ["11:00", "13:00"]]}},
        {"weekly_hours": {"mon": "09:00-17:00"}},
        {"excluded_dates": ["2026-02-30"]},
        {"slot_minutes": 2},
        {"buffer_minutes": 241},
        {"colour": "red"},
    ]
    for body in bad:
        response = await client.post("/api/calendars", json={"name": "X", **body}, headers=team.owner)
        assert error_fields(response) == {next(iter(body))}, body
    made = await create(
        client,
        team.owner,
        weekly_hours={"tue": [["13:00", "17:00"], ["08:00", "12:00"]]},
        excluded_dates=["2027-12-25", "2027-01-01"],
        slot_minutes=20,
    )
    assert made["weekly_hours"]["tue"] == [["08:00", "12:00"], ["13:00", "17:00"]]
    assert made["weekly_hours"]["mon"] == []
    assert made["excluded_dates"] == ["2027-01-01", "2027-12-25"]
    assert (made["slot_minutes"], made["is_default"]) == (20, False)
    patched = await client.patch(
        f"/api/calendars/{made['id']}",
        json={"weekly_hours": {"sun": [["10:00", "09:00"]]}},
        headers=team.owner,
    )
    assert error_fields(patched) == {"weekly_hours"}


async def test_one_default_calendar(client: httpx.AsyncClient, make_account: MakeAccount) -> None:
    team = await signed_in_team(client, make_account)
    [main] = await calendars(client, team.owner)
    second = await create(client, team.owner, is_default=True)
    assert second["is_default"] is True
    defaults = {c["id"]: c["is_default"] for c in await calendars(client, team.owner)}
    assert defaults == {main["id"]: False, second["id"]: True}
    response = await client.patch(
        f"/api/calendars/{main['id']}", json={"is_default": True}, headers=team.admin
    )
    assert response.status_code == 200, response.text
    defaults = {c["id"]: c["is_default"] for c in await calendars(client, team.owner)}
    assert defaults == {main["id"]: True, second["id"]: False}
    unset = await client.patch(f"/api/calendars/{main['id']}", json={"is_default": False}, headers=team.owner)
    assert error_fields(unset) == {"is_default"}


async def test_deleting_a_calendar(client: httpx.AsyncClient, make_account: MakeAccount) -> None:
    team = await signed_in_team(client, make_account)
    [main] = await calendars(client, team.owner)
    assert (await client.delete(f"/api/calendars/{main['id']}", headers=team.owner)).status_code == 409
    spare = await create(client, team.owner)
    booked = await client.post(
        "/api/appointments",
        json={"calendar_id": spare["id"], "starts_at": "2027-02-01T10:00:00Z", "duration_minutes": 30},
        headers=team.agent,
    )
    assert booked.status_code == 201, booked.text
    refused = await client.delete(f"/api/calendars/{spare['id']}", headers=team.owner)
    assert refused.status_code == 409
    assert "appointments" in refused.json()["detail"]["message"]
    assert (await client.delete(f"/api/calendars/{spare['id']}", headers=team.agent)).status_code == 403
    cancelled = await client.post(f"/api/appointments/{booked.json()['id']}/cancel", headers=team.agent)
    assert cancelled.status_code == 200
    assert (await client.delete(f"/api/calendars/{spare['id']}", headers=team.owner)).status_code == 204
    assert (await client.get(f"/api/calendars/{spare['id']}", headers=team.owner)).status_code == 404
    assert (
        await client.get(f"/api/appointments/{booked.json()['id']}", headers=team.owner)
    ).status_code == 404


async def berlin_calendar(client: httpx.AsyncClient, team: Team) -> dict[str, Any]:
    response = await client.patch(
        "/api/business/current", json={"timezone": "Europe/Berlin"}, headers=team.owner
    )
    assert response.status_code == 200, response.text
    return await create(
        client,
        team.owner,
        weekly_hours=BERLIN_HOURS,
        slot_minutes=60,
        booking_window_days=730,
        min_notice_minutes=0,
    )


async def test_availability_is_read_in_the_business_time_zone_across_dst(
    client: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    team = await signed_in_team(client, make_account)
    calendar = await berlin_calendar(client, team)
    sunday = spring_forward_sunday()
    friday, monday = sunday - timedelta(days=2), sunday + timedelta(days=1)
    params = {
        "calendar_id": calendar["id"],
        "from": f"{friday}T00:00:00+01:00",
        "to": f"{monday}T23:00:00+02:00",
        "duration": 60,
    }
    response = await client.get("/api/calendar/availability", params=params, headers=team.agent)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["calendar_id"], body["timezone"], body["duration_minutes"]) == (
        calendar["id"],
        "Europe/Berlin",
        60,
    )
    starts = [datetime.fromisoformat(s["starts_at"]) for s in body["slots"]]
    # 09:00 and 10:00 local: CET (UTC+1) on Friday, CEST (UTC+2) on Monday.
    assert [s.astimezone(UTC).strftime("%m-%d %H:%M") for s in starts] == [
        f"{friday:%m-%d} 08:00",
        f"{friday:%m-%d} 09:00",
        f"{monday:%m-%d} 07:00",
        f"{monday:%m-%d} 08:00",
    ]
    booked = await client.post(
        "/api/appointments",
        json={"calendar_id": calendar["id"], "starts_at": f"{monday}T09:30:00+02:00", "duration_minutes": 15},
        headers=team.agent,
    )
    assert booked.status_code == 201, booked.text
    after = await client.get("/api/calendar/availability", params=params, headers=team.agent)
    # 09:30-09:45 local takes Monday's 09:00 hour; 10:00 stays free.
    assert after.json()["slots"] == body["slots"][:2] + body["slots"][3:]
    cancel = await client.post(f"/api/appointments/{booked.json()['id']}/cancel", headers=team.agent)
    assert cancel.status_code == 200
    again = await client.get("/api/calendar/availability", params=params, headers=team.agent)
    assert again.json()["slots"] == body["slots"]
    paused = await client.patch(
        f"/api/calendars/{calendar['id']}", json={"is_active": False}, headers=team.admin
    )
    assert paused.json()["is_active"] is False
    idle = await client.get("/api/calendar/availability", params=params, headers=team.agent)
    assert idle.json()["slots"] == []


async def test_availability_defaults_and_refusals(
    client: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    team = await signed_in_team(client, make_account)
    other = await signed_in_team(client, make_account, domain="other.example")
    [main] = await calendars(client, team.owner)
    now = datetime.now(UTC)
    window = {"from": now.isoformat(), "to": (now + timedelta(days=14)).isoformat()}
    response = await client.get("/api/calendar/availability", params=window, headers=team.agent)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["calendar_id"], body["timezone"], body["duration_minutes"]) == (main["id"], "UTC", 30)
    assert len(body["slots"]) >= 9 * 16  # at least nine working days of 09:00-17:00 in 14 days
    first = datetime.fromisoformat(body["slots"][0]["starts_at"])
    assert first >= now + timedelta(minutes=main["min_notice_minutes"])
    assert all(datetime.fromisoformat(s["starts_at"]).weekday() < 5 for s in body["slots"])

    too_long = {"from": now.isoformat(), "to": (now + timedelta(days=63)).isoformat()}
    assert error_fields(
        await client.get("/api/calendar/availability", params=too_long, headers=team.agent)
    ) == {"to"}
    backwards = {"from": window["to"], "to": window["from"]}
    assert error_fields(
        await client.get("/api/calendar/availability", params=backwards, headers=team.agent)
    ) == {"to"}
    naive = {"from": "2027-02-01T00:00:00", "to": "2027-02-02T00:00:00"}
    assert error_fields(await client.get("/api/calendar/availability", params=naive, headers=team.agent)) == {
        "from",
        "to",
    }
    foreign = {**window, "calendar_id": main["id"]}
    assert (
        await client.get("/api/calendar/availability", params=foreign, headers=other.agent)
    ).status_code == 404
