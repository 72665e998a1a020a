"""/api/followup-rules: follow-up steps per lead status (a status of the same business only: another
business's status is as unknown as a missing one), their validation, roles, tenancy, and deactivating,
moving or deleting a rule cancelling its scheduled messages."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.api.lead_helpers import MakeAccount, error_fields, signed_in_team, statuses
from tests.api.message_helpers import add_message, made, message_status

RULES = "/api/followup-rules"
STEPS = [
    {"delay_minutes": 60, "template": "Hi {first_name}, any questions about {business_name}?"},
    {"delay_minutes": 1440, "template": "Still {status}? Reply to this SMS, {full_name}."},
]


async def test_rules_per_status_managed_by_owners_and_admins(
    client: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    team = await signed_in_team(client, make_account)
    by_key = await statuses(client, team.owner)
    contacted, qualified = by_key["contacted"]["id"], by_key["qualified"]["id"]
    rule = await made(
        await client.post(
            RULES, json={"status_id": contacted, "name": "Nudge", "steps": STEPS}, headers=team.owner
        )
    )
    assert (rule["status_id"], rule["name"], rule["steps"]) == (contacted, "Nudge", STEPS)
    assert (rule["channel"], rule["is_active"]) == ("sms", True)
    other = await made(
        await client.post(
            RULES,
            json={"status_id": qualified, "name": "Close", "steps": STEPS[:1], "is_active": False},
            headers=team.admin,
        )
    )
    assert other["is_active"] is False

    everything = await made(await client.get(RULES, headers=team.agent), 200)
    assert [r["id"] for r in everything["items"]] == [rule["id"], other["id"]]
    of_contacted = await made(
        await client.get(RULES, params={"status_id": contacted}, headers=team.agent), 200
    )
    assert [r["id"] for r in of_contacted["items"]] == [rule["id"]]
    one = f"{RULES}/{rule['id']}"
    assert await made(await client.get(one, headers=team.agent), 200) == rule

    for method, path, body in [
        ("POST", RULES, {"status_id": contacted, "name": "x", "steps": STEPS}),
        ("PATCH", one, {"name": "x"}),
        ("DELETE", one, None),
    ]:
        response = await client.request(method, path, json=body, headers=team.agent)
        assert response.status_code == 403, (method, response.text)

    new_steps = [{"delay_minutes": 0, "template": "Thanks, {first_name}!"}]
    changed = await made(
        await client.patch(one, json={"steps": new_steps, "status_id": qualified}, headers=team.admin), 200
    )
    assert (changed["steps"], changed["status_id"], changed["name"]) == (new_steps, qualified, "Nudge")
    assert (await client.delete(one, headers=team.owner)).status_code == 204
    assert (await client.get(one, headers=team.owner)).status_code == 404
    left = await made(await client.get(RULES, headers=team.owner), 200)
    assert [r["id"] for r in left["items"]] == [other["id"]]


async def test_bad_fields_are_422_naming_the_field(
    client: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    team = await signed_in_team(client, make_account)
    other = await signed_in_team(client, make_account, "bakery.example")
    status_id = (await statuses(client, team.owner))["new"]["id"]
    foreign_status = (await statuses(client, other.owner))["new"]["id"]
    good = {"status_id": status_id, "name": "Nudge", "steps": STEPS}
    cases: list[tuple[dict[str, Any], str]] = [
        ({**good, "name": ""}, "name"),
        ({**good, "name": "x" * 101}, "name"),
        ({**good, "status_id": 0}, "status_id"),
        ({**good, "channel": "fax"}, "channel"),
        ({**good, "steps": []}, "steps"),
        ({**good, "steps": [{"delay_minutes": n, "template": "x"} for n in range(11)]}, "steps"),
        (
            {
                **good,
                "steps": [{"delay_minutes": 10, "template": "a"}, {"delay_minutes": 10, "template": "b"}],
            },
            "steps",
        ),
        (
            {
                **good,
                "steps": [{"delay_minutes": 60, "template": "a"}, {"delay_minutes": 5, "template": "b"}],
            },
            "steps",
        ),
        ({**good, "steps": [{"delay_minutes": -1, "template": "x"}]}, "delay_minutes"),
        ({**good, "steps": [{"delay_minutes": 129_601, "template": "x"}]}, "delay_minutes"),
        ({**good, "steps": [{"delay_minutes": 5, "template": ""}]}, "template"),
        ({**good, "steps": [{"delay_minutes": 5, "template": "x" * 1601}]}, "template"),
        ({**good, "steps": [{"delay_minutes": 5, "template": "See you {date}"}]}, "template"),
        ({**good, "steps": [{"delay_minutes": 5}]}, "template"),
        ({**good, "steps": [{"delay_minutes": 5, "template": "x", "extra": 1}]}, "extra"),
        ({**good, "surprise": 1}, "surprise"),
    ]
    for body, field in cases:
        response = await client.post(RULES, json=body, headers=team.owner)
        assert error_fields(response) == {field}, body

    # Another business's status answers exactly like a status that does not exist.
    foreign = await client.post(RULES, json={**good, "status_id": foreign_status}, headers=team.owner)
    missing = await client.post(RULES, json={**good, "status_id": 10**12}, headers=team.owner)
    assert error_fields(foreign) == {"status_id"}
    assert foreign.json() == missing.json()

    unknown = await client.post(
        RULES,
        json={**good, "steps": [{"delay_minutes": 5, "template": "See you {date}"}]},
        headers=team.owner,
    )
    [error] = unknown.json()["detail"]
    assert "{date}" in error["msg"]
    assert "status" in error["msg"]
    assert error["loc"] == ["body", "steps", 0, "template"]
    whatsapp = await client.post(RULES, json={**good, "channel": "whatsapp"}, headers=team.owner)
    assert "not available yet" in whatsapp.json()["detail"][0]["msg"]
    last = [{"delay_minutes": 129_600, "template": "x"}]
    assert (await client.post(RULES, json={**good, "steps": last}, headers=team.owner)).status_code == 201

    rule = await made(await client.post(RULES, json=good, headers=team.owner))
    one = f"{RULES}/{rule['id']}"
    for body, field in [
        ({"status_id": foreign_status}, "status_id"),
        ({"steps": None}, "steps"),
        ({"steps": [{"delay_minutes": 9, "template": "a"}, {"delay_minutes": 1, "template": "b"}]}, "steps"),
        ({"channel": "whatsapp"}, "channel"),
    ]:
        assert error_fields(await client.patch(one, json=body, headers=team.owner)) == {field}, body
    assert await made(await client.get(one, headers=team.owner), 200) == rule
    assert error_fields(await client.get(RULES, params={"status_id": "x"}, headers=team.owner)) == {
        "status_id"
    }


async def test_another_business_cannot_reach_a_rule(
    client: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    team = await signed_in_team(client, make_account)
    other = await signed_in_team(client, make_account, "bakery.example")
    status_id = (await statuses(client, team.owner))["new"]["id"]
    rule = await made(
        await client.post(
            RULES, json={"status_id": status_id, "name": "Nudge", "steps": STEPS}, headers=team.owner
        )
    )
    one = f"{RULES}/{rule['id']}"
    other_status = (await statuses(client, other.owner))["new"]["id"]
    for method, body in [("GET", None), ("PATCH", {"status_id": other_status}), ("DELETE", None)]:
        response = await client.request(method, one, json=body, headers=other.owner)
        assert response.status_code == 404, (method, response.text)
    assert (await made(await client.get(RULES, headers=other.owner), 200))["items"] == []
    by_status = await client.get(RULES, params={"status_id": status_id}, headers=other.owner)
    assert (await made(by_status, 200))["items"] == []
    assert await made(await client.get(one, headers=team.owner), 200) == rule


async def test_deactivating_moving_or_deleting_cancels_its_scheduled_messages(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine
) -> None:
    team = await signed_in_team(client, make_account)
    by_key = await statuses(client, team.owner)
    body = {"status_id": by_key["contacted"]["id"], "name": "Nudge", "steps": STEPS}
    first = await made(await client.post(RULES, json=body, headers=team.owner))
    second = await made(await client.post(RULES, json=body, headers=team.owner))
    third = await made(await client.post(RULES, json=body, headers=team.owner))
    b = team.business_id
    of_first = await add_message(db_engine, b, key="followup", followup_rule_id=first["id"], followup_step=1)
    sent = await add_message(db_engine, b, "sent", "followup", followup_rule_id=first["id"], followup_step=1)
    of_second = await add_message(
        db_engine, b, key="followup", followup_rule_id=second["id"], followup_step=2
    )
    of_third = await add_message(db_engine, b, key="followup", followup_rule_id=third["id"], followup_step=1)

    # New steps or a new name apply to later plans: scheduled messages stay.
    await made(
        await client.patch(
            f"{RULES}/{first['id']}", json={"name": "x", "steps": STEPS[:1]}, headers=team.owner
        ),
        200,
    )
    same_status = await client.patch(
        f"{RULES}/{first['id']}", json={"status_id": body["status_id"]}, headers=team.owner
    )
    assert same_status.status_code == 200
    assert await message_status(client, team.owner, of_first) == "scheduled"

    await made(
        await client.patch(f"{RULES}/{first['id']}", json={"is_active": False}, headers=team.owner), 200
    )
    assert await message_status(client, team.owner, of_first) == "cancelled"
    assert await message_status(client, team.owner, sent) == "sent"
    assert await message_status(client, team.owner, of_second) == "scheduled"

    moved = {"status_id": by_key["qualified"]["id"]}
    await made(await client.patch(f"{RULES}/{second['id']}", json=moved, headers=team.admin), 200)
    assert await message_status(client, team.owner, of_second) == "cancelled"
    assert await message_status(client, team.owner, of_third) == "scheduled"

    assert (await client.delete(f"{RULES}/{third['id']}", headers=team.owner)).status_code == 204
    kept = await made(await client.get(f"/api/messages/{of_third}", headers=team.owner), 200)
    assert (kept["status"], kept["followup_rule_id"], kept["kind"]) == ("cancelled", None, "followup")
