"""Tenant isolation, walked from the OpenAPI schema: with businesses A and B, a user of B can neither
read, list, change nor delete A's objects (A's ids answer 404, lists never show A's data, foreign ids in
bodies are refused or match nothing), and every role gets 403 where the permission matrix says so.

Every operation of the schema must be classified in :data:`COVERAGE` (or be public / platform-only):
a new route without coverage fails :func:`test_every_operation_is_covered`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from prosaas_api.auth.permissions import Permission, allows
from prosaas_api.operations_doc import operations, schema_app
from prosaas_common.models import Call, CallTurn, Notification, UserRole
from prosaas_common.models.webhook import WebhookDelivery
from tests.api.lead_helpers import MakeAccount, Team, signed_in_team, statuses

MARK = "secretofa"  # in every text of A's objects; never in anything B may see


@dataclass(frozen=True)
class Covered:
    """How the suite exercises one operation. ``body`` is a valid body (B's attempts must fail on the
    tenant check, not on validation)."""

    kind: str  # "object" (path ids of A), "list" (must not show A), "own" (acts in the caller's tenant)
    body: dict[str, Any] | None = None
    params: dict[str, Any] = field(default_factory=dict)


PUBLIC = {
    "ops_liveness",
    "ops_readiness",
    "ops_version",
    "ops_metrics",
    "ops_metrics_json",
    "auth_login",
    "auth_refresh",
    "auth_logout",
    "auth_me",
    "auth_forgot",
    "auth_reset",
    "auth_change_password",
    "intake_receive_lead",
    "admin_impersonate_exit",
}

COVERAGE: dict[str, Covered] = {
    # Platform staff only: tenant users get 403 (checked by the matrix test).
    "admin_create_business": Covered("own", {"name": "X", "owner": {"email": "x@x.example"}}),
    "admin_list_businesses": Covered("own"),
    "admin_get_business": Covered("object"),
    "admin_update_business": Covered("object", {"name": "x"}),
    "admin_deactivate_business": Covered("object"),
    "admin_activate_business": Covered("object"),
    "admin_impersonate_business": Covered("object"),
    # The business and its settings: only ever the caller's own.
    "business_get_current": Covered("list"),
    "business_update_current": Covered("own", {"locale": "en"}),
    "business_list_audit": Covered("list"),
    "business_get_settings": Covered("list"),
    "business_update_settings": Covered("own", {"greeting": "Hello"}),
    "business_rotate_webhook_secret": Covered("own"),
    "business_add_phone_number": Covered("own", {"number": "+14155550166"}),
    "business_update_phone_number": Covered("object", {"label": "x"}),
    "business_delete_phone_number": Covered("object"),
    "users_list": Covered("list"),
    "users_invite": Covered("own", {"email": "new@x.example", "full_name": "N", "role": "agent"}),
    "users_update": Covered("object", {"full_name": "x"}),
    "users_deactivate": Covered("object"),
    "users_activate": Covered("object"),
    "intake_endpoints_list": Covered("list"),
    "intake_endpoints_create": Covered("own", {"name": "form"}),
    "intake_endpoints_get": Covered("object"),
    "intake_endpoints_update": Covered("object", {"name": "x"}),
    "intake_endpoints_delete": Covered("object"),
    "intake_endpoints_rotate_secret": Covered("object"),
    "leads_list": Covered("list"),
    "leads_count": Covered("list"),
    "leads_board": Covered("list"),
    "leads_export_csv": Covered("list"),
    "leads_create": Covered("own", {"name": "Someone"}),
    "leads_bulk": Covered("own", {"selection": {"ids": [1]}, "action": "add_tags", "tags": ["t"]}),
    "leads_get": Covered("object"),
    "leads_update": Covered("object", {"company": "x"}),
    "leads_delete": Covered("object"),
    "leads_move": Covered("object", {"status_id": 1, "position": 0}),
    "leads_timeline": Covered("object"),
    "leads_status_history": Covered("object"),
    "lead_notes_list": Covered("object"),
    "lead_notes_create": Covered("object", {"body": "x"}),
    "lead_notes_update": Covered("object", {"body": "x"}),
    "lead_notes_delete": Covered("object"),
    "lead_statuses_list": Covered("list"),
    "lead_statuses_create": Covered("own", {"name": "Column"}),
    "lead_statuses_update": Covered("object", {"name": "x"}),
    "lead_statuses_delete": Covered("object"),
    "lead_statuses_reorder": Covered("own", {"ids": [1]}),
    "leads_import_upload": Covered("own"),
    "leads_import_preview": Covered("object", {}),
    "leads_import_start": Covered("object", {}),
    "jobs_get": Covered("object"),
    "calendars_list": Covered("list"),
    "calendars_create": Covered("own", {"name": "Room"}),
    "calendars_get": Covered("object"),
    "calendars_update": Covered("object", {"name": "x"}),
    "calendars_delete": Covered("object"),
    "calendar_availability": Covered(
        "list", params={"from": "2027-02-01T00:00:00Z", "to": "2027-02-03T00:00:00Z"}
    ),
    "appointments_list": Covered("list"),
    "appointments_create": Covered("own", {"starts_at": "2027-03-01T10:00:00Z", "duration_minutes": 30}),
    "appointments_get": Covered("object"),
    "appointments_update": Covered("object", {"title": "x"}),
    "appointments_cancel": Covered("object"),
    "webhooks_list_deliveries": Covered("list"),
    "webhooks_get_delivery": Covered("object"),
    "webhooks_resend_delivery": Covered("object"),
    "reminders_list": Covered("list"),
    "reminders_create": Covered("own", {"due_at": "2027-03-01T09:00:00Z", "note": "x"}),
    "reminders_complete": Covered("object"),
    "reminders_snooze": Covered("object", {"minutes": 10}),
    "reminders_delete": Covered("object"),
    "notifications_list": Covered("list"),
    "notifications_read": Covered("object"),
    "notifications_read_all": Covered("own"),
    "automations_list": Covered("list"),
    "automations_create": Covered("own", {"name": "x", "trigger": "booked", "template": "Hi {first_name}"}),
    "automations_get": Covered("object"),
    "automations_update": Covered("object", {"name": "x"}),
    "automations_delete": Covered("object"),
    "followup_rules_list": Covered("list"),
    "followup_rules_create": Covered(
        "own", {"status_id": 1, "name": "x", "steps": [{"delay_minutes": 5, "template": "Hi"}]}
    ),
    "followup_rules_get": Covered("object"),
    "followup_rules_update": Covered("object", {"name": "x"}),
    "followup_rules_delete": Covered("object"),
    "templates_preview": Covered("own", {"template": "Hi {first_name}", "kind": "appointment"}),
    "messages_list": Covered("list"),
    "messages_get": Covered("object"),
    "messages_cancel": Covered("object"),
    "leads_send_message": Covered("object", {"text": "x"}),
    "calls_list": Covered("list"),
    "calls_stats": Covered("list"),
    "calls_get": Covered("object"),
    "calls_recording": Covered("object"),
    "calls_outbound_create": Covered("own", {"lead_id": 1}),
    "calls_outbound_runs_create": Covered("own", {"lead_ids": [1]}),
    "calls_outbound_runs_list": Covered("list"),
    "calls_outbound_runs_get": Covered("object"),
    "calls_outbound_runs_stop": Covered("object"),
}

OPERATIONS = {op: (method, path, needs) for op, method, path, needs in operations(schema_app())}


def test_every_operation_is_covered() -> None:
    uncovered = sorted(set(OPERATIONS) - PUBLIC - set(COVERAGE))
    assert uncovered == [], f"new routes need a line in COVERAGE (isolation suite): {uncovered}"
    assert sorted(set(COVERAGE) - set(OPERATIONS)) == [], "COVERAGE names routes that no longer exist"
    for op in COVERAGE:
        assert OPERATIONS[op][2] in {p.value for p in Permission}, f"{op} is not guarded by require()"
        if COVERAGE[op].kind == "object":
            assert "{" in OPERATIONS[op][1], op


@dataclass
class World:
    a: Team
    b: Team
    ids: dict[str, Any]  # path parameter → A's object id


async def build_world(client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine) -> World:
    a = await signed_in_team(client, make_account, domain="a.example")
    b = await signed_in_team(client, make_account, domain="b.example")

    async def made(response: httpx.Response) -> dict[str, Any]:
        assert response.status_code in (200, 201, 202), response.text
        data: dict[str, Any] = response.json()
        return data

    lead = await made(
        await client.post(
            "/api/leads",
            json={"name": f"Zed {MARK}", "phone": "+14155550100", "email": f"zed@{MARK}.example"},
            headers=a.owner,
        )
    )
    note = await made(
        await client.post(f"/api/leads/{lead['id']}/notes", json={"body": f"{MARK} note"}, headers=a.agent)
    )
    status = await made(
        await client.post("/api/lead-statuses", json={"name": f"{MARK} column"}, headers=a.owner)
    )
    number = await made(
        await client.post(
            "/api/business/current/phone-numbers",
            json={"number": "+14155550177", "label": f"{MARK} line"},
            headers=a.owner,
        )
    )
    endpoint = await made(
        await client.post("/api/intake-endpoints", json={"name": f"{MARK} form"}, headers=a.owner)
    )
    upload = await made(
        await client.post(
            "/api/leads/imports",
            files={"file": ("leads.csv", f"name,phone\n{MARK} row,+14155550188\n".encode(), "text/csv")},
            headers=a.owner,
        )
    )
    job = await made(
        await client.post(
            "/api/leads/bulk",
            json={"selection": {"filter": {}}, "action": "add_tags", "tags": ["x"]},
            headers=a.owner,
        )
    )
    user = await made(
        await client.post(
            "/api/users",
            json={"email": f"agent2@{MARK}.example", "full_name": f"{MARK} agent", "role": "agent"},
            headers=a.owner,
        )
    )
    async with db_engine.begin() as conn:  # deliveries are made by the worker, not through the API
        delivery_id = (
            await conn.execute(
                insert(WebhookDelivery)
                .values(
                    business_id=a.business_id,
                    event_type="lead.created",
                    url=f"https://{MARK}.example/hook",
                    payload={"lead": {"name": f"Zed {MARK}"}},
                    status="dead",
                    attempts=11,
                )
                .returning(WebhookDelivery.id)
            )
        ).scalar_one()
    calendar = await made(await client.post("/api/calendars", json={"name": f"{MARK} room"}, headers=a.owner))
    appointment = await made(
        await client.post(
            "/api/appointments",
            json={
                "calendar_id": calendar["id"],
                "lead_id": lead["id"],
                "starts_at": "2027-02-01T10:00:00Z",
                "duration_minutes": 30,
                "title": f"{MARK} visit",
            },
            headers=a.agent,
        )
    )
    reminder = await made(
        await client.post(
            "/api/reminders",
            json={"due_at": "2027-02-01T09:00:00Z", "note": f"{MARK} call back", "lead_id": lead["id"]},
            headers=a.agent,
        )
    )
    async with db_engine.begin() as conn:  # notifications are made by the worker
        notification_id = (
            await conn.execute(
                insert(Notification)
                .values(
                    business_id=a.business_id,
                    user_id=a.agent_user_id,
                    kind="reminder",
                    title=f"{MARK} reminder",
                    reminder_id=reminder["id"],
                )
                .returning(Notification.id)
            )
        ).scalar_one()
    automation = await made(
        await client.post(
            "/api/automations",
            json={"name": f"{MARK} reminder", "trigger": "before_start", "template": f"{MARK} {{date}}"},
            headers=a.owner,
        )
    )
    rule = await made(
        await client.post(
            "/api/followup-rules",
            json={
                "status_id": status["id"],
                "name": f"{MARK} nudge",
                "steps": [{"delay_minutes": 60, "template": f"{MARK} {{first_name}}"}],
            },
            headers=a.owner,
        )
    )
    message = await made(
        await client.post(
            f"/api/leads/{lead['id']}/messages", json={"text": f"{MARK} hello"}, headers=a.agent
        )
    )
    call_sid = "CA" + "a" * 32
    async with db_engine.begin() as conn:  # calls are written by the calls service
        call_id = (
            await conn.execute(
                insert(Call)
                .values(
                    business_id=a.business_id,
                    call_sid=call_sid,
                    direction="inbound",
                    from_number="+14155550100",
                    to_number="+14155550177",
                    status="completed",
                    lead_id=lead["id"],
                    summary=f"{MARK} wants a visit",
                )
                .returning(Call.id)
            )
        ).scalar_one()
        await conn.execute(
            insert(CallTurn).values(
                business_id=a.business_id, call_id=call_id, speaker="caller", text=f"{MARK} here", offset_ms=0
            )
        )
    run = await made(
        await client.post("/api/calls/outbound/runs", json={"lead_ids": [lead["id"]]}, headers=a.owner)
    )
    ids = {
        "run_id": run["id"],
        "call_sid": call_sid,
        "automation_id": automation["id"],
        "rule_id": rule["id"],
        "message_id": message["id"],
        "reminder_id": reminder["id"],
        "notification_id": notification_id,
        "calendar_id": calendar["id"],
        "appointment_id": appointment["id"],
        "lead_id": lead["id"],
        "note_id": note["id"],
        "status_id": status["id"],
        "number_id": number["id"],
        "endpoint_id": endpoint["id"],
        "import_id": upload["id"],
        "job_id": job["id"],
        "delivery_id": delivery_id,
        "user_id": user["id"],
        "business_id": a.business_id,
    }
    return World(a=a, b=b, ids=ids)


def url(path: str, ids: dict[str, Any]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: str(ids[m.group(1)]), path)


async def call(
    client: httpx.AsyncClient,
    op: str,
    headers: dict[str, str],
    ids: dict[str, Any],
    body: dict[str, Any] | None = None,
) -> httpx.Response:
    method, path, _ = OPERATIONS[op]
    covered = COVERAGE[op]
    if op == "leads_import_upload":
        files = {"file": ("x.csv", b"name,phone\nX,+14155550199\n", "text/csv")}
        return await client.post(url(path, ids), files=files, headers=headers)
    payload = body if body is not None else covered.body
    return await client.request(method, url(path, ids), json=payload, params=covered.params, headers=headers)


async def test_business_b_cannot_reach_business_a(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine
) -> None:
    world = await build_world(client, make_account, db_engine)
    b_status = (await statuses(client, world.b.owner))["new"]["id"]
    tenant_ops = [op for op in COVERAGE if not op.startswith("admin_")]

    for op in tenant_ops:
        covered = COVERAGE[op]
        if covered.kind == "object":
            body = {**covered.body, "status_id": b_status} if op == "leads_move" and covered.body else None
            response = await call(client, op, world.b.owner, world.ids, body)
            assert response.status_code == 404, (
                f"{op}: B reached A's object ({response.status_code}) {response.text}"
            )
            assert MARK not in response.text.lower(), op
        elif covered.kind == "list":
            response = await call(client, op, world.b.owner, world.ids)
            assert response.status_code == 200, f"{op}: {response.status_code} {response.text}"
            assert MARK not in response.text.lower(), f"{op} shows A's data to B"

    # Foreign ids inside bodies: refused, or matching nothing.
    foreign_status = await client.post(
        "/api/leads", json={"name": "x", "status_id": world.ids["status_id"]}, headers=world.b.owner
    )
    assert foreign_status.status_code == 422
    bulk = await client.post(
        "/api/leads/bulk",
        json={"selection": {"ids": [world.ids["lead_id"]]}, "action": "delete"},
        headers=world.b.owner,
    )
    assert bulk.status_code in (200, 202), bulk.text
    reorder = await client.post(
        "/api/lead-statuses/reorder", json={"ids": [world.ids["status_id"]]}, headers=world.b.owner
    )
    assert reorder.status_code == 422

    # A's objects are all still there, unchanged.
    a = world.a.owner
    lead = (await client.get(f"/api/leads/{world.ids['lead_id']}", headers=a)).json()
    assert (lead["company"], lead["first_name"]) == ("", "Zed")
    notes = (await client.get(f"/api/leads/{world.ids['lead_id']}/notes", headers=a)).json()["items"]
    assert [n["body"] for n in notes] == [f"{MARK} note"]
    assert world.ids["status_id"] in {s["id"] for s in (await statuses(client, a)).values()}
    settings = (await client.get("/api/business/current/settings", headers=a)).json()
    assert [(n["id"], n["label"]) for n in settings["phone_numbers"]] == [
        (world.ids["number_id"], f"{MARK} line")
    ]
    assert (await client.get(f"/api/intake-endpoints/{world.ids['endpoint_id']}", headers=a)).json()[
        "name"
    ] == f"{MARK} form"
    assert (await client.get(f"/api/jobs/{world.ids['job_id']}", headers=a)).status_code == 200
    delivery = await client.get(f"/api/webhooks/deliveries/{world.ids['delivery_id']}", headers=a)
    assert delivery.json()["status"] == "dead"  # B's re-send did not touch it
    assert (
        await client.post(f"/api/leads/imports/{world.ids['import_id']}/preview", json={}, headers=a)
    ).status_code == 200
    users = (await client.get("/api/users", headers=a)).json()["items"]
    assert any(u["id"] == world.ids["user_id"] and u["is_active"] for u in users)
    visit = (await client.get(f"/api/appointments/{world.ids['appointment_id']}", headers=a)).json()
    assert (visit["title"], visit["status"]) == (f"{MARK} visit", "scheduled")
    room = (await client.get(f"/api/calendars/{world.ids['calendar_id']}", headers=a)).json()
    assert room["name"] == f"{MARK} room"
    [reminder] = (await client.get("/api/reminders", headers=a)).json()["items"]
    assert (reminder["id"], reminder["status"]) == (world.ids["reminder_id"], "pending")
    inbox = (await client.get("/api/notifications", headers=world.a.agent)).json()
    assert ([n["id"] for n in inbox["items"]], inbox["unread_count"]) == ([world.ids["notification_id"]], 1)
    automation = (await client.get(f"/api/automations/{world.ids['automation_id']}", headers=a)).json()
    assert (automation["name"], automation["is_active"]) == (f"{MARK} reminder", True)
    rule = (await client.get(f"/api/followup-rules/{world.ids['rule_id']}", headers=a)).json()
    assert rule["name"] == f"{MARK} nudge"
    [own_call] = (await client.get("/api/calls", headers=a)).json()["items"]
    assert (own_call["call_sid"], own_call["summary"]) == (world.ids["call_sid"], f"{MARK} wants a visit")
    message = (await client.get(f"/api/messages/{world.ids['message_id']}", headers=a)).json()
    assert message["status"] == "scheduled"  # B's cancel did not touch it
    run = (await client.get(f"/api/calls/outbound/runs/{world.ids['run_id']}", headers=a)).json()
    assert run["status"] == "running"  # B's stop did not touch it
    b_call = await client.post(
        "/api/calls/outbound", json={"lead_id": world.ids["lead_id"]}, headers=world.b.owner
    )
    assert b_call.status_code == 404
    b_run = await client.post(
        "/api/calls/outbound/runs", json={"lead_ids": [world.ids["lead_id"]]}, headers=world.b.owner
    )
    assert b_run.status_code == 422  # A's lead is no lead of B's (and B has no number)
    foreign_rule = await client.post(
        "/api/followup-rules",
        json={
            "status_id": world.ids["status_id"],
            "name": "x",
            "steps": [{"delay_minutes": 1, "template": "x"}],
        },
        headers=world.b.owner,
    )
    assert foreign_rule.status_code == 422


@pytest.mark.parametrize("role", ["agent", "admin", "owner"])
async def test_roles_get_403_where_the_matrix_says_so(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine, role: str
) -> None:
    world = await build_world(client, make_account, db_engine)
    headers = getattr(world.a, role)
    refused = [op for op in COVERAGE if not allows(UserRole(role), Permission(OPERATIONS[op][2]))]
    assert refused, role
    for op in refused:
        response = await call(client, op, headers, world.ids)
        assert response.status_code == 403, f"{role} {op}: {response.status_code} {response.text}"
    # And what the matrix grants to reading roles works on the business's own objects.
    for op, covered in COVERAGE.items():
        method, _, needs = OPERATIONS[op]
        if method == "GET" and covered.kind == "object" and allows(UserRole(role), Permission(needs)):
            response = await call(client, op, headers, world.ids)
            if op == "calls_recording":  # the world's call has no recording: found, but nothing to play
                assert response.json() == {"detail": "recording not found"}, f"{role} {op}"
                continue
            assert response.status_code == 200, f"{role} {op}: {response.status_code} {response.text}"
