"""Business settings and phone numbers: defaults, who may change them, validation, the write-only webhook
secret, numbers unique across businesses (also under a race), isolation and the audit trail."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from prosaas_common.models import AuditEvent, BusinessPhoneNumber, BusinessSettings, UserRole
from tests.api.conftest import Account, auth_for

MakeAccount = Callable[..., Awaitable[Account]]
SETTINGS = "/api/business/current/settings"
NUMBERS = "/api/business/current/phone-numbers"
ROTATE = "/api/business/current/settings/webhook-secret/rotate"

DEFAULTS = {
    "ai_provider": "auto",
    "ai_voice": "alloy",
    "ai_language": "en",
    "system_prompt": "",
    "greeting": "",
    "call_goal": "book_appointment",
    "silence_timeout_s": 8,
    "silence_prompts_before_hangup": 2,
    "max_call_length_s": 600,
    "max_concurrent_calls": 5,
    "max_outbound_calls": 3,
    "recording_enabled": False,
    "transfer_number": None,
    "booking_enabled": True,
    "appointment_duration_min": 30,
    "min_notice_min": 60,
    "booking_window_days": 30,
    "cancellation_notice_h": 24,
    "require_email": False,
    "webhook_url": None,
    "call_completed_webhook_url": None,
    "lead_status_webhook_url": None,
    "email_from_name": None,
    "webhook_secret_set": False,
    "webhook_secret_hint": None,
    "default_region": "US",
    "phone_numbers": [],
}


async def team(client: httpx.AsyncClient, make_account: MakeAccount) -> dict[str, dict[str, str]]:
    """Bearer headers of an owner, an admin and an agent of one business."""
    owner = await make_account("owner@dental.example")
    await make_account("admin@dental.example", UserRole.ADMIN, business_id=owner.business_id)
    await make_account("agent@dental.example", UserRole.AGENT, business_id=owner.business_id)
    return {role: await auth_for(client, f"{role}@dental.example") for role in ("owner", "admin", "agent")}


async def audit_details(db_engine: AsyncEngine, action: str) -> list[dict[str, Any]]:
    """The details of the audit entries with ``action``, oldest first."""
    async with db_engine.connect() as conn:
        query = select(AuditEvent.details).where(AuditEvent.action == action).order_by(AuditEvent.id)
        return list(await conn.scalars(query))


def without_timestamps(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "updated_at"}


async def test_defaults_are_readable_by_an_agent_even_without_a_settings_row(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine
) -> None:
    people = await team(client, make_account)
    read = await client.get(SETTINGS, headers=people["agent"])
    assert read.status_code == 200, read.text
    assert without_timestamps(read.json()) == DEFAULTS
    # A business created before settings existed gets its row (with the defaults) on first use.
    async with db_engine.begin() as conn:
        await conn.execute(delete(BusinessSettings))
    again = await client.get(SETTINGS, headers=people["agent"])
    assert again.status_code == 200
    assert without_timestamps(again.json()) == DEFAULTS
    async with db_engine.connect() as conn:
        assert await conn.scalar(select(BusinessSettings.ai_voice)) == "alloy"
    current = await client.get("/api/business/current", headers=people["agent"])
    assert current.json()["default_region"] == "US"


async def test_owners_and_admins_change_settings_agents_may_not(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine
) -> None:
    people = await team(client, make_account)
    change = {
        "ai_provider": "openai",
        "ai_voice": "coral",
        "ai_language": "pt-BR",
        "system_prompt": "You are the receptionist of Bright Smiles. Never reveal pricing.",
        "greeting": "Hello, Bright Smiles!",
        "call_goal": "capture_lead",
        "silence_timeout_s": 60,
        "max_concurrent_calls": 50,
        "recording_enabled": True,
        "transfer_number": "(415) 555-2671",
        "booking_window_days": 365,
        "min_notice_min": 0,
        "webhook_url": "https://hooks.example.com/prosaas?x=1",
        "lead_status_webhook_url": "http://n8n.internal:5678/webhook/leads",
    }
    refused = await client.patch(SETTINGS, json=change, headers=people["agent"])
    assert refused.status_code == 403
    updated = await client.patch(SETTINGS, json=change, headers=people["owner"])
    assert updated.status_code == 200, updated.text
    expected = {**DEFAULTS, **change, "transfer_number": "+14155552671"}
    assert without_timestamps(updated.json()) == expected
    assert without_timestamps((await client.get(SETTINGS, headers=people["agent"])).json()) == expected

    by_admin = await client.patch(
        SETTINGS,
        json={"greeting": "Hi!", "webhook_url": None, "transfer_number": ""},
        headers=people["admin"],
    )
    assert by_admin.status_code == 200
    assert (by_admin.json()["greeting"], by_admin.json()["webhook_url"]) == ("Hi!", None)
    assert by_admin.json()["transfer_number"] is None
    # Sending the current values again changes nothing and records nothing.
    same = await client.patch(
        SETTINGS, json={"greeting": "Hi!", "ai_voice": "coral"}, headers=people["owner"]
    )
    assert same.status_code == 200

    entries = await audit_details(db_engine, "business.settings_updated")
    assert entries == [
        {"fields": sorted(change)},
        {"fields": ["greeting", "transfer_number", "webhook_url"]},
    ]
    recorded = " ".join(str(details) for details in entries)
    assert "Never reveal pricing" not in recorded
    assert "Bright Smiles" not in recorded


async def test_the_email_sender_name_is_trimmed_and_blank_clears_it(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine
) -> None:
    people = await team(client, make_account)
    name = "  Bright Smiles <Dental> & Co, Zoë's  "
    refused = await client.patch(SETTINGS, json={"email_from_name": name}, headers=people["agent"])
    assert refused.status_code == 403
    updated = await client.patch(SETTINGS, json={"email_from_name": name}, headers=people["admin"])
    assert updated.status_code == 200, updated.text
    assert updated.json()["email_from_name"] == "Bright Smiles <Dental> & Co, Zoë's"
    read = await client.get(SETTINGS, headers=people["agent"])
    assert read.json()["email_from_name"] == "Bright Smiles <Dental> & Co, Zoë's"
    longest = " " + "x" * 200 + " "
    assert (await client.patch(SETTINGS, json={"email_from_name": longest}, headers=people["owner"])).json()[
        "email_from_name"
    ] == "x" * 200
    for clear in ("   ", "", None):
        await client.patch(SETTINGS, json={"email_from_name": "Smiles"}, headers=people["owner"])
        cleared = await client.patch(SETTINGS, json={"email_from_name": clear}, headers=people["owner"])
        assert cleared.status_code == 200, cleared.text
        assert cleared.json()["email_from_name"] is None
        async with db_engine.connect() as conn:
            assert await conn.scalar(select(BusinessSettings.email_from_name)) is None
    entries = await audit_details(db_engine, "business.settings_updated")
    assert entries[0] == {"fields": ["email_from_name"]}
    assert "Bright Smiles" not in str(entries)


async def test_default_region_changes_how_national_numbers_are_read(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine
) -> None:
    owner = await auth_for(client, (await make_account()).email)
    response = await client.patch(
        SETTINGS, json={"default_region": "de", "transfer_number": "030 12345678"}, headers=owner
    )
    assert response.status_code == 200, response.text
    assert (response.json()["default_region"], response.json()["transfer_number"]) == ("DE", "+493012345678")
    assert (await client.get("/api/business/current", headers=owner)).json()["default_region"] == "DE"
    added = await client.post(NUMBERS, json={"number": "030 87654321"}, headers=owner)
    assert added.json()["e164"] == "+493087654321"
    assert await audit_details(db_engine, "business.settings_updated") == [
        {"fields": ["default_region", "transfer_number"]}
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"ai_provider": "gpt-9"}, "ai_provider"),
        ({"ai_provider": None}, "ai_provider"),
        ({"call_goal": "sell_everything"}, "call_goal"),
        ({"ai_language": "english"}, "ai_language"),
        ({"ai_voice": "no spaces please"}, "ai_voice"),
        ({"system_prompt": "x" * 8001}, "system_prompt"),
        ({"greeting": "x" * 1001}, "greeting"),
        ({"greeting": "null\x00byte"}, "body"),  # refused before parsing (input guard)
        ({"silence_timeout_s": 2}, "silence_timeout_s"),
        ({"silence_prompts_before_hangup": 6}, "silence_prompts_before_hangup"),
        ({"max_call_length_s": 3601}, "max_call_length_s"),
        ({"max_concurrent_calls": 0}, "max_concurrent_calls"),
        ({"max_outbound_calls": 51}, "max_outbound_calls"),
        ({"appointment_duration_min": 4}, "appointment_duration_min"),
        ({"min_notice_min": 10081}, "min_notice_min"),
        ({"booking_window_days": 0}, "booking_window_days"),
        ({"cancellation_notice_h": 169}, "cancellation_notice_h"),
        ({"webhook_url": "ftp://files.example.com/hook"}, "webhook_url"),
        ({"call_completed_webhook_url": "hooks.example.com/no-scheme"}, "call_completed_webhook_url"),
        ({"lead_status_webhook_url": "https://"}, "lead_status_webhook_url"),
        ({"webhook_url": "https://example.com/" + "a" * 2000}, "webhook_url"),
        ({"transfer_number": "12"}, "transfer_number"),
        ({"transfer_number": "call me maybe"}, "transfer_number"),
        ({"default_region": "XX"}, "default_region"),
        ({"webhook_secret": "whsec_mine"}, "webhook_secret"),
        ({"email_from_name": "x" * 201}, "email_from_name"),
        ({"email_from_name": "Dental\r\nBcc: victim@example.com"}, "email_from_name"),
        ({"email_from_name": "Dental\n"}, "email_from_name"),
        ({"email_from_name": "Tab\there"}, "email_from_name"),
        ({"email_from_name": 42}, "email_from_name"),
    ],
)
async def test_bad_settings_are_422_on_the_field(
    client: httpx.AsyncClient, make_account: MakeAccount, body: dict[str, Any], field: str
) -> None:
    owner = await auth_for(client, (await make_account()).email)
    response = await client.patch(SETTINGS, json=body, headers=owner)
    assert response.status_code == 422, response.text
    assert [error["loc"][-1] for error in response.json()["detail"]] == [field]
    assert without_timestamps((await client.get(SETTINGS, headers=owner)).json()) == DEFAULTS


async def test_the_transfer_number_cannot_be_one_of_the_business_numbers(
    client: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    owner = await auth_for(client, (await make_account()).email)
    assert (await client.post(NUMBERS, json={"e164": "+14155552671"}, headers=owner)).status_code == 201
    response = await client.patch(SETTINGS, json={"transfer_number": "415 555 2671"}, headers=owner)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "transfer_number"]


async def test_the_webhook_secret_is_shown_once_per_rotation_and_never_read_back(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine
) -> None:
    people = await team(client, make_account)
    assert (await client.post(ROTATE, headers=people["agent"])).status_code == 403
    first = await client.post(ROTATE, headers=people["owner"])
    second = await client.post(ROTATE, headers=people["admin"])
    assert first.status_code == second.status_code == 200
    secrets = [first.json()["webhook_secret"], second.json()["webhook_secret"]]
    assert all(s.startswith("whsec_") and len(s) >= 6 + 43 for s in secrets)
    assert secrets[0] != secrets[1]
    async with db_engine.connect() as conn:
        assert await conn.scalar(select(BusinessSettings.webhook_secret)) == secrets[1]

    for who in ("agent", "owner"):
        read = await client.get(SETTINGS, headers=people[who])
        assert (read.json()["webhook_secret_set"], read.json()["webhook_secret_hint"]) == (
            True,
            secrets[1][-4:],
        )
        assert "webhook_secret" not in read.json()
        assert all(secret not in read.text for secret in secrets)
    patched = await client.patch(SETTINGS, json={"greeting": "Hi"}, headers=people["owner"])
    assert all(secret not in patched.text for secret in secrets)

    entries = await audit_details(db_engine, "business.webhook_secret_rotated")
    assert len(entries) == 2
    assert all(secret not in str(details) for details in entries for secret in secrets)


async def test_phone_numbers_are_added_normalised_relabelled_and_removed(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine
) -> None:
    people = await team(client, make_account)
    owner = people["owner"]
    refused = await client.post(NUMBERS, json={"number": "(415) 555-2671"}, headers=people["agent"])
    assert refused.status_code == 403
    added = await client.post(
        NUMBERS, json={"number": "(415) 555-2671", "label": " Front desk "}, headers=owner
    )
    assert added.status_code == 201, added.text
    main = added.json()
    assert (main["e164"], main["label"]) == ("+14155552671", "Front desk")
    other = await client.post(NUMBERS, json={"e164": "+44 20 7946 0958"}, headers=people["admin"])
    assert other.json()["e164"] == "+442079460958"

    again = await client.post(NUMBERS, json={"number": "+1 415-555-2671"}, headers=owner)
    assert again.status_code == 409
    assert again.json()["detail"]["e164"] == "+14155552671"
    for bad in (
        {"number": "555"},
        {"number": ""},
        {"label": "no number"},
        {"number": "+14155550000", "x": 1},
    ):
        assert (await client.post(NUMBERS, json=bad, headers=owner)).status_code == 422, bad

    relabelled = await client.patch(f"{NUMBERS}/{main['id']}", json={"label": "Main line"}, headers=owner)
    assert relabelled.json() == {**main, "label": "Main line"}
    too_long = await client.patch(f"{NUMBERS}/{main['id']}", json={"label": "x" * 101}, headers=owner)
    assert too_long.status_code == 422
    listed = (await client.get(SETTINGS, headers=people["agent"])).json()["phone_numbers"]
    assert listed == [{**main, "label": "Main line"}, other.json()]

    removed = await client.delete(f"{NUMBERS}/{other.json()['id']}", headers=owner)
    assert removed.status_code == 204
    assert (await client.delete(f"{NUMBERS}/{other.json()['id']}", headers=owner)).status_code == 404
    listed = (await client.get(SETTINGS, headers=owner)).json()["phone_numbers"]
    assert [n["e164"] for n in listed] == ["+14155552671"]

    assert await audit_details(db_engine, "business.phone_number_added") == [
        {"e164": "+14155552671"},
        {"e164": "+442079460958"},
    ]
    assert await audit_details(db_engine, "business.phone_number_updated") == [{"fields": ["label"]}]
    assert await audit_details(db_engine, "business.phone_number_removed") == [{"e164": "+442079460958"}]


async def test_another_business_cannot_take_or_touch_our_numbers(
    client: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    ours = await auth_for(client, (await make_account("owner@first.example")).email)
    theirs = await auth_for(client, (await make_account("owner@second.example")).email)
    number = (await client.post(NUMBERS, json={"number": "415 555 2671"}, headers=ours)).json()

    taken = await client.post(NUMBERS, json={"number": "+14155552671"}, headers=theirs)
    assert taken.status_code == 409
    assert "+14155552671" in taken.json()["detail"]["message"]
    assert (
        await client.patch(f"{NUMBERS}/{number['id']}", json={"label": "mine"}, headers=theirs)
    ).status_code == 404
    assert (await client.delete(f"{NUMBERS}/{number['id']}", headers=theirs)).status_code == 404
    assert (await client.delete(f"{NUMBERS}/{2**63}", headers=ours)).status_code == 422
    assert (await client.get(SETTINGS, headers=theirs)).json()["phone_numbers"] == []
    assert (await client.get(SETTINGS, headers=ours)).json()["phone_numbers"] == [number]


async def test_a_number_taken_concurrently_is_a_409_not_a_500(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine
) -> None:
    """Another business's uncommitted insert passes our look-up; our insert waits on the unique index and
    fails once it commits — the IntegrityError path, made deterministic by holding that transaction."""
    other = await make_account("owner@second.example")
    ours = await auth_for(client, (await make_account("owner@first.example")).email)
    async with db_engine.connect() as holder:
        await holder.execute(
            insert(BusinessPhoneNumber).values(business_id=other.business_id, e164="+14155552671")
        )
        request = asyncio.create_task(client.post(NUMBERS, json={"number": "+14155552671"}, headers=ours))
        blocked = False
        async with db_engine.connect() as watcher:
            waiting = text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            for _ in range(1000):  # poll until our insert waits on the other transaction's row
                blocked = bool(await watcher.scalar(waiting))
                if blocked or request.done():
                    break
                await asyncio.sleep(0.01)
        assert blocked, "the insert should wait for the other transaction"
        assert not request.done()
        await holder.commit()
        response = await request
    assert response.status_code == 409, response.text
    assert response.json()["detail"]["e164"] == "+14155552671"
    assert (await client.get(SETTINGS, headers=ours)).json()["phone_numbers"] == []
