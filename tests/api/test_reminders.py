"""/api/reminders and /api/notifications: reminders for staff of the business (another business's
reminders, leads and users are out of reach), and each user's own notification inbox."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from arq.connections import ArqRedis
from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncEngine

from prosaas_common.jobs import Queue
from prosaas_common.models import Notification, Reminder, User
from prosaas_common.settings import build_settings
from prosaas_worker.context import WorkerResources
from prosaas_worker.jobs.reminders import send_due
from prosaas_worker.settings import WorkerConfig
from tests.api.lead_helpers import MakeAccount, Team, create_lead, error_fields, signed_in_team

REMINDERS = "/api/reminders"
NOTIFICATIONS = "/api/notifications"


async def made(response: httpx.Response, status: int = 201) -> dict[str, Any]:
    assert response.status_code == status, response.text
    data: dict[str, Any] = response.json()
    return data


async def add_notifications(
    engine: AsyncEngine, business_id: int, user_id: int, titles: list[str]
) -> list[int]:
    async with engine.begin() as conn:
        rows = await conn.execute(
            insert(Notification)
            .values(
                [{"business_id": business_id, "user_id": user_id, "kind": "test", "title": t} for t in titles]
            )
            .returning(Notification.id)
        )
        return sorted(rows.scalars())


async def test_reminder_on_a_lead_defaults_to_the_caller_and_enters_the_timeline(
    client: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    team = await signed_in_team(client, make_account)
    lead = await create_lead(client, team.owner, name="Ada Lovelace", phone="+14155550100")
    reminder = await made(
        await client.post(
            REMINDERS,
            json={"due_at": "2027-03-01T09:00:00+01:00", "note": "Call Ada back", "lead_id": lead["id"]},
            headers=team.agent,
        )
    )
    assert reminder["assignee_user_id"] == reminder["created_by_user_id"] == team.agent_user_id
    assert (reminder["status"], reminder["channel"], reminder["lead_id"]) == ("pending", "in_app", lead["id"])
    assert reminder["due_at"].startswith("2027-03-01T08:00:00")  # stored in UTC

    timeline = (await client.get(f"/api/leads/{lead['id']}/timeline", headers=team.owner)).json()["items"]
    [entry] = [e for e in timeline if e["kind"] == "reminder_set"]
    assert "Call Ada back" in entry["summary"]

    for_someone_else = await made(
        await client.post(
            REMINDERS,
            json={
                "due_at": "2027-02-01T09:00:00Z",
                "note": "Send the quote",
                "assignee_user_id": team.admin_user_id,
                "channel": "email",
            },
            headers=team.agent,
        )
    )
    assert for_someone_else["assignee_user_id"] == team.admin_user_id
    listed = (await client.get(REMINDERS, headers=team.owner)).json()["items"]
    assert [r["id"] for r in listed] == [for_someone_else["id"], reminder["id"]]  # soonest first
    by_lead = (await client.get(REMINDERS, params={"lead_id": lead["id"]}, headers=team.owner)).json()
    assert [r["id"] for r in by_lead["items"]] == [reminder["id"]]
    mine = await client.get(REMINDERS, params={"assignee_user_id": team.admin_user_id}, headers=team.agent)
    assert [r["id"] for r in mine.json()["items"]] == [for_someone_else["id"]]


async def test_bad_input_is_a_422_naming_the_field(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine
) -> None:
    team = await signed_in_team(client, make_account)
    other = await signed_in_team(client, make_account, "bakery.example")
    foreign_lead = await create_lead(client, other.owner, name="Not yours", phone="+14155550111")
    good = {"due_at": "2027-03-01T09:00:00Z", "note": "x"}
    cases: list[tuple[dict[str, Any], str]] = [
        ({**good, "due_at": "2027-03-01T09:00:00"}, "due_at"),  # no offset
        ({**good, "note": ""}, "note"),
        ({**good, "channel": "sms"}, "channel"),
        ({**good, "lead_id": foreign_lead["id"]}, "lead_id"),
        ({**good, "assignee_user_id": other.agent_user_id}, "assignee_user_id"),
        ({**good, "surprise": 1}, "surprise"),
    ]
    for body, field in cases:
        assert field in error_fields(await client.post(REMINDERS, json=body, headers=team.owner)), body

    async with db_engine.begin() as conn:
        await conn.execute(update(User).where(User.id == team.admin_user_id).values(is_active=False))
    inactive = await client.post(
        REMINDERS, json={**good, "assignee_user_id": team.admin_user_id}, headers=team.owner
    )
    assert error_fields(inactive) == {"assignee_user_id"}

    reminder = await made(await client.post(REMINDERS, json=good, headers=team.owner))
    snooze = f"{REMINDERS}/{reminder['id']}/snooze"
    assert error_fields(await client.post(snooze, json={}, headers=team.owner))
    assert error_fields(
        await client.post(snooze, json={"minutes": 5, "until": good["due_at"]}, headers=team.owner)
    )
    assert "until" in error_fields(
        await client.post(snooze, json={"until": "2020-01-01T00:00:00Z"}, headers=team.owner)
    )
    assert "minutes" in error_fields(await client.post(snooze, json={"minutes": 0}, headers=team.owner))
    assert "status" in error_fields(
        await client.get(REMINDERS, params={"status": "lost"}, headers=team.owner)
    )


async def test_complete_snooze_delete_and_other_businesses_get_404(
    client: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    team = await signed_in_team(client, make_account)
    other: Team = await signed_in_team(client, make_account, "bakery.example")
    reminder = await made(
        await client.post(REMINDERS, json={"due_at": "2027-03-01T09:00:00Z", "note": "x"}, headers=team.agent)
    )
    base = f"{REMINDERS}/{reminder['id']}"
    for method, path, body in [
        ("POST", f"{base}/complete", None),
        ("POST", f"{base}/snooze", {"minutes": 10}),
        ("DELETE", base, None),
    ]:
        response = await client.request(method, path, json=body, headers=other.owner)
        assert response.status_code == 404, (path, response.text)
    assert (await client.get(REMINDERS, headers=other.owner)).json()["items"] == []

    done = await made(await client.post(f"{base}/complete", headers=team.agent), 200)
    assert (done["status"], done["done_at"] is not None) == ("done", True)
    snoozed = await made(
        await client.post(f"{base}/snooze", json={"until": "2031-05-01T12:00:00+02:00"}, headers=team.agent),
        200,
    )
    assert (snoozed["status"], snoozed["done_at"]) == ("pending", None)
    assert snoozed["due_at"].startswith("2031-05-01T10:00:00")
    pending = (await client.get(REMINDERS, params={"status": "pending"}, headers=team.owner)).json()["items"]
    assert [r["id"] for r in pending] == [reminder["id"]]

    assert (await client.delete(base, headers=team.agent)).status_code == 204
    assert (await client.delete(base, headers=team.agent)).status_code == 404
    assert (await client.get(REMINDERS, headers=team.owner)).json()["items"] == []


async def test_notifications_are_the_callers_own(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine
) -> None:
    team = await signed_in_team(client, make_account)
    mine = await add_notifications(db_engine, team.business_id, team.agent_user_id, ["one", "two", "three"])
    [theirs] = await add_notifications(db_engine, team.business_id, team.admin_user_id, ["admin's"])

    first = await made(await client.get(NOTIFICATIONS, params={"limit": 2}, headers=team.agent), 200)
    assert [n["title"] for n in first["items"]] == ["three", "two"]  # newest first
    assert (first["unread_count"], first["next_before"]) == (3, mine[1])
    rest = await made(
        await client.get(
            NOTIFICATIONS, params={"limit": 2, "before": first["next_before"]}, headers=team.agent
        ),
        200,
    )
    assert ([n["title"] for n in rest["items"]], rest["next_before"]) == (["one"], None)

    read = await made(await client.post(f"{NOTIFICATIONS}/{mine[0]}/read", headers=team.agent), 200)
    assert read["read_at"] is not None
    unread = await made(await client.get(NOTIFICATIONS, params={"unread": "true"}, headers=team.agent), 200)
    assert ([n["id"] for n in unread["items"]], unread["unread_count"]) == ([mine[2], mine[1]], 2)

    # Another user's notification is as unreachable as another business's.
    assert (await client.post(f"{NOTIFICATIONS}/{theirs}/read", headers=team.agent)).status_code == 404
    assert (await made(await client.post(f"{NOTIFICATIONS}/read-all", headers=team.agent), 200))[
        "marked"
    ] == 2
    after = await made(await client.get(NOTIFICATIONS, headers=team.agent), 200)
    assert after["unread_count"] == 0
    assert all(n["read_at"] for n in after["items"])
    admin = await made(await client.get(NOTIFICATIONS, headers=team.admin), 200)
    assert ([n["id"] for n in admin["items"]], admin["unread_count"]) == ([theirs], 1)


async def test_a_snoozed_reminder_notifies_again_when_due_again(
    client: httpx.AsyncClient, make_account: MakeAccount, database_url: str, redis_url: str, pool: ArqRedis
) -> None:
    team = await signed_in_team(client, make_account)
    resources = WorkerResources.create(
        build_settings(WorkerConfig, app_env="test", database_url=database_url, redis_url=redis_url)
    )
    ctx = resources.job_context(Queue.DEFAULT)
    ctx.update(job_id="cron:reminders-due", job_try=1, redis=pool)
    try:
        past = datetime.now(UTC) - timedelta(minutes=1)
        reminder = await made(
            await client.post(
                REMINDERS, json={"due_at": past.isoformat(), "note": "Ring"}, headers=team.agent
            )
        )
        assert await send_due(ctx) == 1
        base = f"{REMINDERS}/{reminder['id']}"
        assert (await client.get(REMINDERS, headers=team.agent)).json()["items"][0]["status"] == "sent"
        await made(await client.post(f"{base}/snooze", json={"minutes": 10}, headers=team.agent), 200)
        assert await send_due(ctx) == 0  # not due yet
        async with resources.session_factory() as db, db.begin():  # fast-forward: due now
            await db.execute(update(Reminder).where(Reminder.id == reminder["id"]).values(due_at=past))
        assert await send_due(ctx) == 1
        inbox = (await client.get(NOTIFICATIONS, headers=team.agent)).json()
        assert ([n["title"] for n in inbox["items"]], inbox["unread_count"]) == (["Reminder: Ring"] * 2, 2)
    finally:
        await resources.dispose()
