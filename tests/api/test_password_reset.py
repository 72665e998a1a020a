"""Forgotten passwords: nothing revealed, an outbox e-mail and its job after commit, single-use links,
every session ended by a reset."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from arq.connections import ArqRedis
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from prosaas_common.jobs import Queue
from prosaas_common.models import BusinessSettings, OutboundEmail, UserRole
from tests.api.conftest import PASSWORD, Account

MakeAccount = Callable[..., Awaitable[Account]]
NEW_PASSWORD = "a brand new passphrase"
ACCEPTED = {"status": "accepted", "detail": "if an account uses this e-mail, a reset link is on its way"}


async def outbox(engine: AsyncEngine) -> list[OutboundEmail]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(OutboundEmail).order_by(OutboundEmail.id))
        return list(rows.all())  # type: ignore[arg-type]


def token_in(body: str) -> str:
    match = re.search(r"/reset-password#token=([A-Za-z0-9_-]+)", body)
    assert match, body
    return match.group(1)


async def login(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post("/api/auth/login", json={"email": email, "password": password, "client": "api"})


async def forgot(client: httpx.AsyncClient, email: str) -> dict[str, Any]:
    response = await client.post("/api/auth/forgot", json={"email": email})
    assert response.status_code == 202
    body: dict[str, Any] = response.json()
    return body


async def test_known_and_unknown_addresses_get_the_same_answer(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine, pool: ArqRedis
) -> None:
    await make_account()
    await make_account("gone@dental.example", user_active=False)
    assert await forgot(client, "nobody@dental.example") == ACCEPTED
    assert await forgot(client, "gone@dental.example") == ACCEPTED
    assert await outbox(db_engine) == []
    assert await pool.zcard(Queue.HIGH.value) == 0

    assert await forgot(client, "Owner@Dental.example") == ACCEPTED
    [email] = await outbox(db_engine)
    assert email.to_address == "owner@dental.example"
    assert email.status == "pending"
    assert email.dedup_key.startswith("password-reset:")
    assert email.subject == "Reset your ProSaaS password"
    assert "http://localhost:5000/reset-password#token=" in email.body_text
    assert "within 60 minutes" in email.body_text
    # Both parts, the same link in each, sent in the name of the account's business.
    html = email.body_html or ""
    assert html.startswith("<!DOCTYPE html>")
    assert f'href="http://localhost:5000/reset-password#token={token_in(email.body_text)}"' in html
    assert email.from_name == "Business of owner@dental.example"
    # The delivery job was enqueued after the commit, keyed by the outbox row.
    assert await pool.zrange(Queue.HIGH.value, 0, -1) == [f"email:{email.id}".encode()]


async def test_reset_sets_the_password_spends_the_link_and_ends_sessions(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine
) -> None:
    account = await make_account()
    signed_in = (await login(client, account.email, PASSWORD)).json()
    await forgot(client, account.email)
    await forgot(client, account.email)
    first, second = [token_in(e.body_text) for e in await outbox(db_engine)]

    reset = await client.post("/api/auth/reset", json={"token": second, "new_password": NEW_PASSWORD})
    assert reset.status_code == 204
    assert (await login(client, account.email, NEW_PASSWORD)).status_code == 200
    assert (await login(client, account.email, PASSWORD)).status_code == 401
    me = await client.get("/api/auth/me", headers={"Authorization": f"Bearer {signed_in['access_token']}"})
    assert me.status_code == 401, "sessions from before the reset are over"
    refreshed = await client.post("/api/auth/refresh", json={"refresh_token": signed_in["refresh_token"]})
    assert refreshed.status_code == 401
    for spent in (second, first):
        again = await client.post(
            "/api/auth/reset", json={"token": spent, "new_password": "yet another passphrase"}
        )
        assert again.status_code == 400
        assert again.json() == {"detail": "the reset link is invalid, used or expired"}


async def test_an_expired_link_is_refused(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine
) -> None:
    await make_account()
    await forgot(client, "owner@dental.example")
    [email] = await outbox(db_engine)
    async with db_engine.begin() as conn:
        await conn.execute(text("UPDATE password_reset_tokens SET expires_at = now() - interval '1 second'"))
    response = await client.post(
        "/api/auth/reset", json={"token": token_in(email.body_text), "new_password": NEW_PASSWORD}
    )
    assert response.status_code == 400


async def test_a_weak_new_password_is_a_422_on_that_field(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/auth/reset", json={"token": "x" * 32, "new_password": "short"})
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "new_password"]
    assert "at least 12 characters" in error["msg"]


async def test_reset_mails_are_limited_per_account_and_hour(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine
) -> None:
    await make_account()
    for _ in range(5):
        assert await forgot(client, "owner@dental.example") == ACCEPTED
    assert len(await outbox(db_engine)) == 3


async def test_a_signed_in_change_keeps_this_session_and_ends_the_others(
    client: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    account = await make_account()
    here = (await login(client, account.email, PASSWORD)).json()
    elsewhere = (await login(client, account.email, PASSWORD)).json()
    auth = {"Authorization": f"Bearer {here['access_token']}"}

    wrong = {"current_password": "not my password", "new_password": NEW_PASSWORD}
    assert (await client.post("/api/auth/password", json=wrong, headers=auth)).status_code == 400
    weak = {"current_password": PASSWORD, "new_password": "short"}
    assert (await client.post("/api/auth/password", json=weak, headers=auth)).status_code == 422
    change = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    assert (await client.post("/api/auth/password", json=change)).status_code == 401, "signed-in users only"

    assert (await client.post("/api/auth/password", json=change, headers=auth)).status_code == 204
    assert (await client.get("/api/auth/me", headers=auth)).status_code == 200, "this session goes on"
    other = {"Authorization": f"Bearer {elsewhere['access_token']}"}
    assert (await client.get("/api/auth/me", headers=other)).status_code == 401
    refreshed = await client.post("/api/auth/refresh", json={"refresh_token": elsewhere["refresh_token"]})
    assert refreshed.status_code == 401
    assert (await login(client, account.email, PASSWORD)).status_code == 401
    assert (await login(client, account.email, NEW_PASSWORD)).status_code == 200


async def test_the_reset_email_uses_the_business_sender_name_and_escapes_it(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine
) -> None:
    account = await make_account()
    async with db_engine.begin() as conn:
        await conn.execute(
            update(BusinessSettings)
            .where(BusinessSettings.business_id == account.business_id)
            .values(email_from_name="Smiles <script>x</script>")
        )
    await make_account("root@platform.example", UserRole.SYSTEM_ADMIN)
    await forgot(client, account.email)
    await forgot(client, "root@platform.example")
    business, platform = await outbox(db_engine)
    assert business.from_name == "Smiles <script>x</script>"
    assert "Sent by Smiles <script>x</script> with ProSaaS." in business.body_text
    assert business.body_html is not None
    assert "Sent by Smiles &lt;script&gt;x&lt;/script&gt; with ProSaaS." in business.body_html
    assert "<script" not in business.body_html
    # Platform staff belong to no business: SMTP_FROM's own name signs.
    assert (platform.business_id, platform.from_name) == (None, None)
    assert "Sent by ProSaaS." in platform.body_text
    assert token_in(platform.body_html or "") == token_in(platform.body_text)
