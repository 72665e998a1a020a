"""Inbound lead webhooks: managing endpoints, and the public post that turns form data into leads."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
from redis.asyncio import Redis
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from structlog.testing import capture_logs

from prosaas_api.intake.public import MAX_BODY_BYTES, POSTS_PER_WINDOW, THROTTLE_KEY
from prosaas_common.models import (
    AuditEvent,
    Business,
    DomainEvent,
    Lead,
    LeadIntakeEndpoint,
    LeadIntakeReceipt,
    LeadStatus,
    UserRole,
)
from tests.api.conftest import Account, auth_for

MakeAccount = Callable[..., Awaitable[Account]]
ENDPOINTS = "/api/intake-endpoints"


async def owner_of_business(
    client: httpx.AsyncClient, make_account: MakeAccount, email: str = "owner@dental.example"
) -> tuple[Account, dict[str, str]]:
    account = await make_account(email)
    return account, await auth_for(client, email)


async def create_endpoint(client: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    response = await client.post(ENDPOINTS, json={"name": "Website form", **body}, headers=headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def post_lead(
    client: httpx.AsyncClient, endpoint: dict[str, Any], secret: str | None = None, **kwargs: Any
) -> httpx.Response:
    headers = {"X-Webhook-Secret": secret if secret is not None else endpoint["secret"]}
    headers.update(kwargs.pop("headers", {}))
    return await client.post(endpoint["url_path"], headers=headers, **kwargs)


async def status_id(db_engine: AsyncEngine, business_id: int | None, key: str) -> int:
    async with db_engine.connect() as conn:
        found = await conn.scalar(
            select(LeadStatus.id).where(LeadStatus.business_id == business_id, LeadStatus.key == key)
        )
    assert found is not None
    return int(found)


async def leads_of(db_engine: AsyncEngine, business_id: int | None) -> list[Any]:
    async with db_engine.connect() as conn:
        rows = await conn.execute(select(Lead).where(Lead.business_id == business_id).order_by(Lead.id))
        return list(rows.all())


async def count(db_engine: AsyncEngine, model: Any) -> int:
    async with db_engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(model)) or 0)


# ---- management -------------------------------------------------------------------------------------


async def test_create_shows_the_secret_once_and_audits_without_it(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine
) -> None:
    _, owner = await owner_of_business(client, make_account)
    created = await create_endpoint(client, owner, source="Site-Form")
    endpoint_id = created["id"]
    assert created["url_path"] == f"/api/webhook/leads/{endpoint_id}"
    assert created["url"].endswith(created["url_path"])
    assert (created["source"], created["is_active"], created["target_status_id"]) == ("site-form", True, None)
    secret = created["secret"]
    assert len(secret) >= 32
    async with db_engine.connect() as conn:
        stored = await conn.scalar(select(LeadIntakeEndpoint.secret_hash))
        audit_rows = (await conn.execute(select(AuditEvent.action, AuditEvent.details))).all()
    assert stored == hashlib.sha256(secret.encode()).hexdigest()
    assert [row.action for row in audit_rows] == ["intake_endpoint.created"]
    assert secret not in json.dumps([row.details for row in audit_rows])

    listed = (await client.get(ENDPOINTS, headers=owner)).json()
    assert listed["max_endpoints"] == 5
    assert [item["id"] for item in listed["items"]] == [endpoint_id]
    assert "secret" not in listed["items"][0]
    one = await client.get(f"{ENDPOINTS}/{endpoint_id}", headers=owner)
    assert one.status_code == 200
    assert "secret" not in one.json()


async def test_a_sixth_endpoint_is_refused_even_when_created_concurrently(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine
) -> None:
    _, owner = await owner_of_business(client, make_account)
    for n in range(3):
        await create_endpoint(client, owner, name=f"form {n}")
    answers = await asyncio.gather(
        *(client.post(ENDPOINTS, json={"name": f"race {n}"}, headers=owner) for n in range(4))
    )
    assert sorted(a.status_code for a in answers) == [201, 201, 409, 409]
    refusal = next(a for a in answers if a.status_code == 409)
    assert "at most 5 intake endpoints" in refusal.json()["detail"]
    assert await count(db_engine, LeadIntakeEndpoint) == 5


async def test_a_target_status_of_another_business_is_a_field_error(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine
) -> None:
    account, owner = await owner_of_business(client, make_account)
    other = await make_account("owner@other.example")
    foreign = await status_id(db_engine, other.business_id, "won")
    refused = await client.post(ENDPOINTS, json={"name": "x", "target_status_id": foreign}, headers=owner)
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "target_status_id"]
    endpoint = await create_endpoint(client, owner)
    patched = await client.patch(
        f"{ENDPOINTS}/{endpoint['id']}", json={"target_status_id": foreign}, headers=owner
    )
    assert patched.status_code == 422
    own = await status_id(db_engine, account.business_id, "won")
    ok = await client.patch(f"{ENDPOINTS}/{endpoint['id']}", json={"target_status_id": own}, headers=owner)
    assert ok.json()["target_status_id"] == own
    bad_null = await client.patch(f"{ENDPOINTS}/{endpoint['id']}", json={"name": None}, headers=owner)
    assert bad_null.status_code == 422


async def test_agents_may_not_manage_endpoints(client: httpx.AsyncClient, make_account: MakeAccount) -> None:
    owner_account, owner = await owner_of_business(client, make_account)
    endpoint = await create_endpoint(client, owner)
    await make_account("agent@dental.example", UserRole.AGENT, business_id=owner_account.business_id)
    agent = await auth_for(client, "agent@dental.example")
    assert (await client.get(ENDPOINTS, headers=agent)).status_code == 403
    assert (await client.post(ENDPOINTS, json={"name": "x"}, headers=agent)).status_code == 403
    assert (await client.delete(f"{ENDPOINTS}/{endpoint['id']}", headers=agent)).status_code == 403


async def test_another_business_endpoint_and_malformed_ids_answer_404(
    client: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    _, owner = await owner_of_business(client, make_account)
    theirs = await create_endpoint(client, owner)
    _, other = await owner_of_business(client, make_account, "owner@other.example")
    for path in (theirs["id"], "not-a-uuid", str(uuid.uuid4())):
        assert (await client.get(f"{ENDPOINTS}/{path}", headers=other)).status_code == 404
        assert (
            await client.patch(f"{ENDPOINTS}/{path}", json={"name": "mine"}, headers=other)
        ).status_code == 404
        assert (await client.post(f"{ENDPOINTS}/{path}/rotate-secret", headers=other)).status_code == 404
        assert (await client.delete(f"{ENDPOINTS}/{path}", headers=other)).status_code == 404
    assert (await client.get(ENDPOINTS, headers=other)).json()["items"] == []
    assert (await client.get(f"{ENDPOINTS}/{theirs['id']}", headers=owner)).json()["name"] == "Website form"


async def test_rotate_update_and_delete(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine
) -> None:
    account, owner = await owner_of_business(client, make_account)
    endpoint = await create_endpoint(client, owner)
    rotated = await client.post(f"{ENDPOINTS}/{endpoint['id']}/rotate-secret", headers=owner)
    assert rotated.status_code == 200
    new_secret = rotated.json()["secret"]
    assert new_secret != endpoint["secret"]
    lead = {"email": "a@b.example"}
    assert (await post_lead(client, endpoint, json=lead)).status_code == 401
    assert (await post_lead(client, endpoint, new_secret, json=lead)).status_code == 201

    renamed = await client.patch(
        f"{ENDPOINTS}/{endpoint['id']}", json={"name": "Landing page", "source": "landing"}, headers=owner
    )
    assert (renamed.json()["name"], renamed.json()["source"]) == ("Landing page", "landing")
    assert renamed.json()["last_used_at"] is not None
    assert (await client.delete(f"{ENDPOINTS}/{endpoint['id']}", headers=owner)).status_code == 204
    assert (await post_lead(client, endpoint, new_secret, json={"email": "c@d.example"})).status_code == 401
    assert (await client.get(f"{ENDPOINTS}/{endpoint['id']}", headers=owner)).status_code == 404
    async with db_engine.connect() as conn:
        actions = list(await conn.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))
        details = json.dumps(list(await conn.scalars(select(AuditEvent.details))))
    assert actions == [
        "intake_endpoint.created",
        "intake_endpoint.secret_rotated",
        "intake_endpoint.updated",
        "intake_endpoint.deleted",
    ]
    assert new_secret not in details
    assert endpoint["secret"] not in details
    assert len(await leads_of(db_engine, account.business_id)) == 1


# ---- the public post ----------------------------------------------------------------------------------


async def test_a_json_post_creates_a_mapped_lead_in_the_target_status(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine
) -> None:
    account, owner = await owner_of_business(client, make_account)
    qualified = await status_id(db_engine, account.business_id, "qualified")
    endpoint = await create_endpoint(client, owner, target_status_id=qualified, source="website")
    payload = {
        "First Name": "Ada",
        "lastName": "Lovelace",
        "Phone Number": "(212) 555-0100",
        "E-Mail": "Ada@Example.com",
        "company_name": "Analytical Engines",
        "message": "Call me about a cleaning",
        "tags": "web, vip",
        "budget": "5k",
    }
    with capture_logs() as logs:
        created = await post_lead(client, endpoint, json=payload)
    assert created.status_code == 201, created.text
    assert created.json() == {"lead_id": created.json()["lead_id"], "created": True, "duplicate": False}
    [lead] = await leads_of(db_engine, account.business_id)
    assert lead.id == created.json()["lead_id"]
    assert (lead.first_name, lead.last_name, lead.phone, lead.email) == (
        "Ada",
        "Lovelace",
        "+12125550100",
        "ada@example.com",
    )
    assert (lead.company, lead.reason, lead.tags, lead.fields) == (
        "Analytical Engines",
        "Call me about a cleaning",
        ["web", "vip"],
        {"budget": "5k"},
    )
    assert (lead.status_id, lead.source) == (qualified, "website")
    async with db_engine.connect() as conn:
        events = (await conn.execute(select(DomainEvent.type, DomainEvent.payload))).all()
        used = await conn.scalar(select(LeadIntakeEndpoint.last_used_at))
    assert [(e.type, e.payload["lead"]["id"]) for e in events] == [("lead.created", lead.id)]
    assert used is not None
    accepted = [entry for entry in logs if entry["event"] == "intake.accepted"]
    assert [entry["log_level"] for entry in accepted] == ["debug"]


async def test_form_posts_create_leads(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine
) -> None:
    account, owner = await owner_of_business(client, make_account)
    endpoint = await create_endpoint(client, owner)
    urlencoded = await post_lead(
        client,
        endpoint,
        data={"your-name": "Grace Brewster Hopper", "your-email": "grace@navy.example", "tags[]": ["a", "b"]},
    )
    assert urlencoded.status_code == 201, urlencoded.text
    multipart = await post_lead(
        client,
        endpoint,
        data={"Full Name": "Alan Turing", "tel": "212 555 0142", "_wpnonce": "x", "color": "blue"},
        files={"cv": ("cv.txt", b"a file is ignored", "text/plain")},
    )
    assert multipart.status_code == 201, multipart.text
    assert multipart.request.headers["content-type"].startswith("multipart/form-data")
    grace, alan = await leads_of(db_engine, account.business_id)
    assert (grace.first_name, grace.last_name, grace.email, grace.phone, grace.tags) == (
        "Grace",
        "Brewster Hopper",
        "grace@navy.example",
        None,
        ["a", "b"],
    )
    assert (alan.first_name, alan.last_name, alan.phone, alan.fields) == (
        "Alan",
        "Turing",
        "+12125550142",
        {"color": "blue"},
    )
    assert alan.status_id == await status_id(db_engine, account.business_id, "new")


async def test_n8n_wrapped_posts_and_the_business_region(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine
) -> None:
    account, owner = await owner_of_business(client, make_account)
    async with db_engine.begin() as conn:
        await conn.execute(update(Business).values(default_region="DE"))
    endpoint = await create_endpoint(client, owner)
    posted = await post_lead(
        client, endpoint, json={"body": {"name": "Lise Meitner", "phone": "030 1234567"}}
    )
    assert posted.status_code == 201, posted.text
    [lead] = await leads_of(db_engine, account.business_id)
    assert (lead.first_name, lead.phone) == ("Lise", "+49301234567")


async def test_a_repeated_phone_updates_the_lead(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine
) -> None:
    account, owner = await owner_of_business(client, make_account)
    endpoint = await create_endpoint(client, owner)
    first = await post_lead(client, endpoint, json={"phone": "212-555-0100", "name": "Ada"})
    again = await post_lead(client, endpoint, json={"phone": "+1 (212) 555 0100", "company": "Acme"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == {"lead_id": first.json()["lead_id"], "created": False, "duplicate": False}
    [lead] = await leads_of(db_engine, account.business_id)
    assert (lead.first_name, lead.company) == ("Ada", "Acme")
    assert await count(db_engine, DomainEvent) == 1


async def test_an_external_id_makes_the_post_idempotent(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine
) -> None:
    account, owner = await owner_of_business(client, make_account)
    endpoint = await create_endpoint(client, owner)
    first = await post_lead(client, endpoint, json={"submission_id": "sub-1", "email": "a@b.example"})
    assert first.status_code == 201
    repeat = await post_lead(
        client, endpoint, json={"submission_id": "sub-1", "email": "other@b.example", "phone": "212-555-0100"}
    )
    assert repeat.status_code == 200
    assert repeat.json() == {"lead_id": first.json()["lead_id"], "created": False, "duplicate": True}
    [lead] = await leads_of(db_engine, account.business_id)
    assert (lead.email, lead.phone) == ("a@b.example", None)
    async with db_engine.connect() as conn:
        receipts = (
            await conn.execute(select(LeadIntakeReceipt.external_id, LeadIntakeReceipt.lead_id))
        ).all()
    assert [(r.external_id, r.lead_id) for r in receipts] == [("sub-1", lead.id)]
    # Another external id (or none) is another lead: e-mails alone never merge.
    assert (
        await post_lead(client, endpoint, json={"id": "sub-2", "email": "a@b.example"})
    ).status_code == 201
    assert (await post_lead(client, endpoint, json={"email": "a@b.example"})).status_code == 201
    assert len(await leads_of(db_engine, account.business_id)) == 3


async def test_concurrent_identical_posts_create_one_lead(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine
) -> None:
    account, owner = await owner_of_business(client, make_account)
    endpoint = await create_endpoint(client, owner)
    payload = {"entry_id": "form-77", "email": "same@b.example", "name": "Ada"}
    answers = await asyncio.gather(*(post_lead(client, endpoint, json=payload) for _ in range(5)))
    assert sorted(a.status_code for a in answers) == [200, 200, 200, 200, 201]
    assert len({a.json()["lead_id"] for a in answers}) == 1
    assert sum(a.json()["duplicate"] for a in answers) == 4
    assert len(await leads_of(db_engine, account.business_id)) == 1
    assert await count(db_engine, DomainEvent) == 1


async def test_every_refusal_is_the_same_401_and_writes_nothing(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine
) -> None:
    account, owner = await owner_of_business(client, make_account)
    endpoint = await create_endpoint(client, owner)
    paused = await create_endpoint(client, owner, name="paused")
    await client.patch(f"{ENDPOINTS}/{paused['id']}", json={"is_active": False}, headers=owner)
    other_account = await make_account("owner@closed.example")
    closed = await create_endpoint(client, await auth_for(client, other_account.email), name="closed")
    async with db_engine.begin() as conn:
        await conn.execute(
            update(Business).where(Business.id == other_account.business_id).values(is_active=False)
        )

    lead = {"email": "a@b.example"}
    attempts = {
        "wrong secret": post_lead(client, endpoint, "wrong", json=lead),
        "no secret": client.post(endpoint["url_path"], json=lead),
        "other endpoint's secret": post_lead(client, endpoint, paused["secret"], json=lead),
        "unknown id": post_lead(
            client, {**endpoint, "url_path": f"/api/webhook/leads/{uuid.uuid4()}"}, json=lead
        ),
        "malformed id": post_lead(client, {**endpoint, "url_path": "/api/webhook/leads/1"}, json=lead),
        "inactive endpoint": post_lead(client, paused, json=lead),
        "inactive business": post_lead(client, closed, json=lead),
    }
    with capture_logs() as logs:
        answers = {name: await attempt for name, attempt in attempts.items()}

    def shape(response: httpx.Response) -> tuple[int, bytes, list[tuple[str, str]]]:
        headers = sorted((k, v) for k, v in response.headers.items() if k != "x-request-id")
        return response.status_code, response.content, headers

    expected = shape(answers["wrong secret"])
    assert expected[0] == 401
    for name, response in answers.items():
        assert shape(response) == expected, name
    assert await leads_of(db_engine, account.business_id) == []
    assert await count(db_engine, Lead) == 0
    rejected = [entry for entry in logs if entry["event"] == "intake.rejected"]
    assert len(rejected) == len(attempts)
    assert {entry["log_level"] for entry in rejected} == {"debug"}
    assert not [entry for entry in logs if entry["log_level"] in ("warning", "error")]


async def test_media_type_size_and_body_errors(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine
) -> None:
    _, owner = await owner_of_business(client, make_account)
    endpoint = await create_endpoint(client, owner)
    plain = await post_lead(
        client, endpoint, content=b"email=a@b.example", headers={"content-type": "text/plain"}
    )
    assert plain.status_code == 415
    assert (await post_lead(client, endpoint, content=b"{}")).status_code == 415  # no content type

    big = {"email": "a@b.example", "notes": "x" * MAX_BODY_BYTES}
    assert (await post_lead(client, endpoint, json=big)).status_code == 413

    async def streamed() -> AsyncIterator[bytes]:  # chunked: no Content-Length to go by
        yield b'{"notes": "'
        for _ in range(80):
            yield b"x" * 1024
        yield b'"}'

    chunked = await post_lead(
        client, endpoint, content=streamed(), headers={"content-type": "application/json"}
    )
    assert chunked.status_code == 413

    json_type = {"content-type": "application/json"}
    broken = await post_lead(client, endpoint, content=b'{"email": ', headers=json_type)
    assert broken.status_code == 422
    assert broken.json()["detail"][0]["msg"].startswith("the body is not valid JSON")
    array = await post_lead(client, endpoint, json=[{"email": "a@b.example"}])
    assert array.status_code == 422
    assert array.json()["detail"][0]["msg"] == "the JSON body must be an object of fields"
    nan = await post_lead(client, endpoint, content=b'{"email": "a@b.example", "x": NaN}', headers=json_type)
    assert nan.status_code == 422
    deep = await post_lead(client, endpoint, content=b"[" * 30_000 + b"]" * 30_000, headers=json_type)
    assert deep.status_code == 422

    invalid = await post_lead(client, endpoint, json={"Phone": "12", "email": "nope"})
    assert invalid.status_code == 422
    assert [error["loc"] for error in invalid.json()["detail"]] == [["body", "Phone"], ["body", "email"]]
    empty = await post_lead(client, endpoint, json={"company": "Acme"})
    assert empty.status_code == 422
    assert empty.json()["detail"] == [
        {
            "loc": ["body"],
            "msg": "a lead needs a phone number, an e-mail address or a name",
            "type": "value_error",
        }
    ]
    bad_multipart = await post_lead(
        client, endpoint, content=b"garbage", headers={"content-type": "multipart/form-data"}
    )
    assert bad_multipart.status_code == 422
    assert await count(db_engine, Lead) == 0


async def test_posts_beyond_the_limit_answer_429(
    client: httpx.AsyncClient, make_account: MakeAccount, redis: Redis, db_engine: AsyncEngine
) -> None:
    _, owner = await owner_of_business(client, make_account)
    endpoint = await create_endpoint(client, owner)
    key = THROTTLE_KEY.format(endpoint["id"])
    assert (await post_lead(client, endpoint, json={"email": "a@b.example"})).status_code == 201
    assert await redis.get(key) == "1"
    assert 0 < await redis.ttl(key) <= 60
    await redis.set(key, POSTS_PER_WINDOW, keepttl=True)
    throttled = await post_lead(client, endpoint, json={"email": "c@d.example"})
    assert throttled.status_code == 429
    assert 0 < int(throttled.headers["retry-after"]) <= 60
    # Counted before the secret is checked, so guessing is throttled too.
    assert (await post_lead(client, endpoint, "guess", json={"email": "c@d.example"})).status_code == 429
    assert await count(db_engine, Lead) == 1
    other = await create_endpoint(client, owner, name="other")
    assert (await post_lead(client, other, json={"email": "c@d.example"})).status_code == 201


async def test_a_phone_alone_is_enough(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine
) -> None:
    account, owner = await owner_of_business(client, make_account)
    endpoint = await create_endpoint(client, owner)
    assert (await post_lead(client, endpoint, data={"mobile": "212-555-0100"})).status_code == 201
    [lead] = await leads_of(db_engine, account.business_id)
    assert (lead.phone, lead.email, lead.first_name, lead.source) == ("+12125550100", None, "", "webhook")
