"""/api/calls: the business's phone calls, read-only — filters and keyset pages newest first, one call
with its turns in order and the appointments it booked, figures over a period, sid validation, tenancy
and roles. Calls, turns and bookings are written by the calls service, so the tests insert them."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from prosaas_common.models import Appointment, Calendar, Call, CallTurn, UserRole
from tests.api.conftest import auth_for
from tests.api.lead_helpers import MakeAccount, Team, create_lead, signed_in_team

CALLS = "/api/calls"
T0 = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)


def sid(n: int) -> str:
    return f"CA{n:032x}"


async def add_call(engine: AsyncEngine, business_id: int, n: int, **values: Any) -> int:
    """A call as the calls service records it; ``n`` makes its sid and caller number."""
    fields: dict[str, Any] = {
        "direction": "inbound",
        "from_number": f"+1212555{n:04d}",
        "to_number": "+14155550177",
        "status": "completed",
        "started_at": T0,
        **values,
    }
    async with engine.begin() as conn:
        row = await conn.execute(
            insert(Call).values(business_id=business_id, call_sid=sid(n), **fields).returning(Call.id)
        )
        return int(row.scalar_one())


async def add_turns(
    engine: AsyncEngine, business_id: int, call_id: int, *turns: tuple[str, str, int]
) -> None:
    async with engine.begin() as conn:
        for speaker, text, offset_ms in turns:
            await conn.execute(
                insert(CallTurn).values(
                    business_id=business_id, call_id=call_id, speaker=speaker, text=text, offset_ms=offset_ms
                )
            )


async def book(
    engine: AsyncEngine, business_id: int, call_sid: str, starts_at: datetime, status: str = "scheduled"
) -> int:
    """An appointment the phone agent booked during ``call_sid``."""
    async with engine.begin() as conn:
        calendar_id = (
            await conn.execute(
                select(Calendar.id).where(Calendar.business_id == business_id, Calendar.is_default)
            )
        ).scalar_one()
        row = await conn.execute(
            insert(Appointment)
            .values(
                business_id=business_id,
                calendar_id=calendar_id,
                call_sid=call_sid,
                status=status,
                starts_at=starts_at,
                ends_at=starts_at + timedelta(minutes=30),
            )
            .returning(Appointment.id)
        )
        return int(row.scalar_one())


def cursor_of(value: Any) -> str:
    """A cursor as a client could forge one."""
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def refused_params(response: httpx.Response) -> set[str]:
    """The query parameters a 422 names."""
    assert response.status_code == 422, response.text
    return {error["loc"][1] for error in response.json()["detail"] if error["loc"][0] == "query"}


async def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


async def sids(client: httpx.AsyncClient, team: Team, **params: Any) -> list[str]:
    page = await ok(await client.get(CALLS, params=params, headers=team.agent))
    return [item["call_sid"] for item in page["items"]]


async def two_teams(client: httpx.AsyncClient, make_account: MakeAccount) -> tuple[Team, Team]:
    return (
        await signed_in_team(client, make_account, "a.example"),
        await signed_in_team(client, make_account, "b.example"),
    )


async def test_lists_filter_and_page_newest_first(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine
) -> None:
    a, b = await two_teams(client, make_account)
    lead = await create_lead(client, a.owner, name="Ada", phone="+12125550003")
    hour = timedelta(hours=1)
    await add_call(db_engine, a.business_id, 1, started_at=T0, status="no-answer")
    await add_call(
        db_engine,
        a.business_id,
        2,
        started_at=T0 + hour,
        direction="outbound",
        from_number="+14155550177",
        to_number="+13105550142",
        status="busy",
    )
    await add_call(
        db_engine,
        a.business_id,
        3,
        started_at=T0 + 2 * hour,
        lead_id=lead["id"],
        recording_path="/recordings/3.wav",
        recording_sid="RE1",
        summary="Booked a cleaning",
    )
    await add_call(db_engine, a.business_id, 4, started_at=T0 + 2 * hour, status="in-progress")
    await add_call(db_engine, a.business_id, 5, started_at=T0 + 3 * hour, from_number="anonymous")
    await add_call(db_engine, b.business_id, 6, started_at=T0 + 4 * hour)  # another business's, newest
    newest_first = [sid(5), sid(4), sid(3), sid(2), sid(1)]  # equal starts: the later id first

    page = await ok(await client.get(CALLS, headers=a.agent))
    assert [c["call_sid"] for c in page["items"]] == newest_first
    assert page["next_cursor"] is None
    by_sid = {c["call_sid"]: c for c in page["items"]}
    third = by_sid[sid(3)]
    assert (third["lead_id"], third["summary"], third["direction"], third["status"]) == (
        lead["id"],
        "Booked a cleaning",
        "inbound",
        "completed",
    )
    assert third["recording_url"] == f"/api/calls/{sid(3)}/recording"
    assert by_sid[sid(4)]["recording_url"] is None
    assert "recording_path" not in third
    assert "turns" not in third
    assert await sids(client, b) == [sid(6)], "B sees only its own call"

    # Keyset pages: each page continues where the last ended, also when a newer call arrives meanwhile.
    first = await ok(await client.get(CALLS, params={"limit": 2}, headers=a.agent))
    assert [c["call_sid"] for c in first["items"]] == newest_first[:2]
    await add_call(db_engine, a.business_id, 7, started_at=T0 + 5 * hour)
    seen = [c["call_sid"] for c in first["items"]]
    cursor = first["next_cursor"]
    while cursor is not None:
        page = await ok(await client.get(CALLS, params={"limit": 2, "cursor": cursor}, headers=a.agent))
        seen += [c["call_sid"] for c in page["items"]]
        cursor = page["next_cursor"]
    assert seen == newest_first

    # Filters.
    assert await sids(client, a, direction="outbound") == [sid(2)]
    assert await sids(client, a, status=["busy", "no-answer"]) == [sid(2), sid(1)]
    assert await sids(client, a, lead_id=lead["id"]) == [sid(3)]
    window = {"from": (T0 + hour).isoformat(), "to": (T0 + 3 * hour).isoformat()}
    assert await sids(client, a, **window) == [sid(4), sid(3), sid(2)], "[from, to)"
    assert await sids(client, a, q="(310) 555-01") == [sid(2)], "the called number"
    assert await sids(client, a, q="212-555-0001") == [sid(1)], "the caller's number"
    assert await sids(client, a, q="+1 212 555 000") == [sid(7), sid(4), sid(3), sid(1)]
    assert await sids(client, a, q="555", direction="outbound", status="busy") == [sid(2)]
    assert await sids(client, b, q="4155550177") == [sid(6)]

    # Refusals name the field.
    for params, field in (
        ({"cursor": "bm90IGEgY3Vyc29y"}, "cursor"),
        ({"cursor": cursor_of({"at": "2027-03-01T12:00:00", "id": 1})}, "cursor"),  # naive time
        ({"cursor": cursor_of({"at": "0001-01-01T00:00:00+05:00", "id": 1})}, "cursor"),
        ({"cursor": cursor_of({"at": T0.isoformat(), "id": True})}, "cursor"),
        ({"cursor": cursor_of({"at": T0.isoformat(), "id": 2**63})}, "cursor"),
        ({"cursor": cursor_of([T0.isoformat(), 1])}, "cursor"),
        ({"cursor": "%%%"}, "cursor"),
        ({"from": window["to"], "to": window["from"]}, "to"),
        ({"q": "anonymous"}, "q"),
        ({"status": "answered"}, "status"),
        ({"direction": "sideways"}, "direction"),
        ({"from": "0001-01-01T00:00:00+05:00"}, "from"),
        ({"to": "2027-03-01T12:00:00"}, "to"),  # no offset
    ):
        assert refused_params(await client.get(CALLS, params=params, headers=a.agent)) == {field}, params


async def test_one_call_with_its_turns_in_order_and_what_it_booked(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine
) -> None:
    a, b = await two_teams(client, make_account)
    call_id = await add_call(
        db_engine,
        a.business_id,
        1,
        duration_s=95,
        answered_at=T0 + timedelta(seconds=2),
        ended_at=T0 + timedelta(seconds=97),
        end_reason="completed",
        provider="openai",
        usage={"input_tokens": 1200},
        summary="Wants a cleaning on Tuesday",
        recording_path="/r/1.wav",
    )
    # Saved out of order (turns are written as utterances finish): read back by offset.
    await add_turns(
        db_engine,
        a.business_id,
        call_id,
        ("caller", "Tuesday at ten works", 9000),
        ("agent", "Hello, Bright Dental", 500),
        ("caller", "Hi, I need a cleaning", 3000),
        ("system", "booked", 9500),
    )
    booked = await book(db_engine, a.business_id, sid(1), T0 + timedelta(days=1))
    rebooked = await book(db_engine, a.business_id, sid(1), T0 + timedelta(hours=4), status="cancelled")
    await book(db_engine, a.business_id, sid(9), T0 + timedelta(days=2))  # another call's booking
    await book(db_engine, b.business_id, sid(1), T0 + timedelta(days=3))  # another business's row
    quiet_id = await add_call(db_engine, a.business_id, 2)
    await add_turns(db_engine, b.business_id, quiet_id, ("caller", "not ours", 0))  # stray, other tenant

    detail = await ok(await client.get(f"{CALLS}/{sid(1)}", headers=a.agent))
    assert [(t["speaker"], t["text"], t["offset_ms"]) for t in detail["turns"]] == [
        ("agent", "Hello, Bright Dental", 500),
        ("caller", "Hi, I need a cleaning", 3000),
        ("caller", "Tuesday at ten works", 9000),
        ("system", "booked", 9500),
    ]
    assert detail["summary"] == "Wants a cleaning on Tuesday"
    assert [(x["id"], x["status"]) for x in detail["appointments"]] == [
        (rebooked, "cancelled"),
        (booked, "scheduled"),
    ]
    assert datetime.fromisoformat(detail["appointments"][1]["starts_at"]) == T0 + timedelta(days=1)
    assert (detail["duration_s"], detail["provider"], detail["usage"]) == (
        95,
        "openai",
        {"input_tokens": 1200},
    )
    assert datetime.fromisoformat(detail["answered_at"]) == T0 + timedelta(seconds=2)
    assert detail["recording_url"] == f"/api/calls/{sid(1)}/recording"
    assert "recording_path" not in detail

    quiet = await ok(await client.get(f"{CALLS}/{sid(2)}", headers=a.owner))
    assert (quiet["turns"], quiet["appointments"], quiet["recording_url"], quiet["summary"]) == (
        [],
        [],
        None,
        None,
    )

    # Another business's sid is a call that does not exist, and gives nothing away.
    for headers, call_sid in ((b.owner, sid(1)), (a.owner, sid(404))):
        missing = await client.get(f"{CALLS}/{call_sid}", headers=headers)
        assert (missing.status_code, missing.json()) == (404, {"detail": "call not found"})


async def test_a_sid_that_is_not_a_twilio_call_sid_is_a_422_on_call_sid(
    client: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    a = await signed_in_team(client, make_account)
    for bad in ("CA123", "CA" + "g" * 32, "CA" + "A" * 32, "SM" + "0" * 32, sid(1) + "0", "1"):
        response = await client.get(f"{CALLS}/{bad}", headers=a.agent)
        assert response.status_code == 422, bad
        assert [e["loc"] for e in response.json()["detail"]] == [["path", "call_sid"]], bad


async def test_stats_count_the_period_of_the_business(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine
) -> None:
    a, b = await two_teams(client, make_account)
    minute = timedelta(minutes=1)
    answered = {"answered_at": T0}
    # In [T0, T0 + 1 day): 5 of A's calls.
    await add_call(db_engine, a.business_id, 1, duration_s=60, **answered)
    await add_call(db_engine, a.business_id, 2, started_at=T0 + minute, duration_s=121, **answered)
    await add_call(
        db_engine,
        a.business_id,
        3,
        started_at=T0 + 2 * minute,
        direction="outbound",
        status="no-answer",
        duration_s=0,
    )
    await add_call(db_engine, a.business_id, 4, started_at=T0 + 3 * minute, status="in-progress", **answered)
    await add_call(
        db_engine, a.business_id, 5, started_at=T0 + 4 * minute, direction="outbound", status="busy"
    )
    await book(db_engine, a.business_id, sid(1), T0 + timedelta(days=2))
    await book(db_engine, a.business_id, sid(1), T0 + timedelta(days=3))  # two bookings, one call
    await book(db_engine, a.business_id, sid(2), T0 + timedelta(days=4), status="cancelled")
    # Outside: before the period, at its end (exclusive), and another business's.
    await add_call(db_engine, a.business_id, 6, started_at=T0 - minute, duration_s=999, **answered)
    await add_call(db_engine, a.business_id, 7, started_at=T0 + timedelta(days=1), duration_s=999)
    await add_call(db_engine, b.business_id, 8, started_at=T0 + minute, duration_s=999, **answered)
    await book(db_engine, b.business_id, sid(8), T0 + timedelta(days=2))
    await book(db_engine, b.business_id, sid(3), T0 + timedelta(days=3))  # B's row naming A's call

    period = {"from": "2027-03-01T14:00:00+02:00", "to": "2027-03-02T12:00:00Z"}
    stats = await ok(await client.get(f"{CALLS}/stats", params=period, headers=a.agent))
    assert stats == {
        "from": "2027-03-01T12:00:00Z",
        "to": "2027-03-02T12:00:00Z",
        "total": 5,
        "by_status": {
            "queued": 0,
            "ringing": 0,
            "in-progress": 1,
            "completed": 2,
            "busy": 1,
            "failed": 0,
            "no-answer": 1,
            "canceled": 0,
        },
        "by_direction": {"inbound": 3, "outbound": 2},
        "answered": 3,
        "booked": 2,
        "total_duration_s": 181,
        "average_duration_s": 60.3,  # 181 s over the 3 calls with a duration
    }
    of_b = await ok(await client.get(f"{CALLS}/stats", params=period, headers=b.agent))
    assert (of_b["total"], of_b["answered"], of_b["booked"], of_b["total_duration_s"]) == (1, 1, 1, 999)

    empty = await ok(
        await client.get(
            f"{CALLS}/stats",
            params={"from": "2026-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
            headers=a.agent,
        )
    )
    assert (empty["total"], empty["total_duration_s"], empty["average_duration_s"]) == (0, 0, None)
    refused = await client.get(
        f"{CALLS}/stats", params={"from": period["to"], "to": period["from"]}, headers=a.agent
    )
    assert refused_params(refused) == {"to"}


async def test_stats_default_to_the_last_30_days(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine
) -> None:
    a = await signed_in_team(client, make_account)
    now = datetime.now(UTC)
    await add_call(db_engine, a.business_id, 1, started_at=now - timedelta(days=1), duration_s=30)
    await add_call(db_engine, a.business_id, 2, started_at=now - timedelta(days=29, hours=23))
    await add_call(db_engine, a.business_id, 3, started_at=now - timedelta(days=30, hours=1))
    before = datetime.now(UTC)
    stats = await ok(await client.get(f"{CALLS}/stats", headers=a.agent))
    start, end = datetime.fromisoformat(stats["from"]), datetime.fromisoformat(stats["to"])
    assert before <= end <= datetime.now(UTC)
    assert end - start == timedelta(days=30)
    assert end.utcoffset() == timedelta(0)
    assert (stats["total"], stats["total_duration_s"], stats["average_duration_s"]) == (2, 30, 30.0)
    # Only one end given: 30 days up to it.
    upto = await ok(
        await client.get(
            f"{CALLS}/stats", params={"to": (now - timedelta(days=2)).isoformat()}, headers=a.agent
        )
    )
    assert (upto["total"], upto["total_duration_s"]) == (2, 0), "the two older calls"


async def test_every_staff_role_reads_calls_and_others_are_refused(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine
) -> None:
    a = await signed_in_team(client, make_account)
    await add_call(db_engine, a.business_id, 1)
    paths = (CALLS, f"{CALLS}/{sid(1)}", f"{CALLS}/stats")
    for headers in (a.owner, a.admin, a.agent):
        for path in paths:
            assert (await client.get(path, headers=headers)).status_code == 200, path
    staff = await make_account("root@platform.example", UserRole.SYSTEM_ADMIN)
    platform = await auth_for(client, staff.email)
    for path in paths:
        assert (await client.get(path, headers=platform)).status_code == 403, path
        assert (await client.get(path)).status_code == 401, path
