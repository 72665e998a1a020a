"""Sign-in: bearer and cookie sessions, CSRF, refresh rotation with reuse detection, sign-out."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from prosaas_api.auth.tokens import hash_token, issue_access_token
from prosaas_api.settings import DEV_AUTH_SECRET
from prosaas_common.models import RefreshToken, UserRole
from tests.api.conftest import PASSWORD, Account

MakeAccount = Callable[..., Awaitable[Account]]


async def api_login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    return await client.post("/api/auth/login", json={"email": email, "password": password, "client": "api"})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_api_client_signs_in_and_reads_me(client: httpx.AsyncClient, make_account: MakeAccount) -> None:
    account = await make_account("Owner@Dental.example")
    response = await api_login(client, "owner@dental.EXAMPLE")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 900
    assert "set-cookie" not in response.headers
    me = await client.get("/api/auth/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200
    assert me.json() == {
        "id": account.user_id,
        "email": "Owner@Dental.example",
        "full_name": "",
        "role": "owner",
        "business": {"id": account.business_id, "name": "Business of Owner@Dental.example"},
        "impersonating": False,
        "acting_role": "owner",
    }


async def test_browser_gets_httponly_cookies_and_a_csrf_token(
    client: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    await make_account("agent@dental.example", UserRole.AGENT)
    response = await client.post(
        "/api/auth/login", json={"email": "agent@dental.example", "password": PASSWORD}
    )
    assert response.status_code == 200
    body = response.json()
    assert "access_token" not in body
    assert "refresh_token" not in body
    cookies = {c.split("=", 1)[0]: c.lower() for c in response.headers.get_list("set-cookie")}
    assert "httponly" in cookies["prosaas_access"]
    assert "httponly" in cookies["prosaas_refresh"]
    assert "path=/api/auth" in cookies["prosaas_refresh"]
    assert "samesite=strict" in cookies["prosaas_refresh"]
    assert "httponly" not in cookies["prosaas_csrf"], "the SPA must read the CSRF cookie"
    assert "secure" not in cookies["prosaas_access"], "COOKIE_SECURE defaults off outside production"
    assert client.cookies["prosaas_csrf"] == body["csrf_token"]
    me = await client.get("/api/auth/me")
    assert me.json()["role"] == "agent"


async def test_cookie_requests_that_change_state_need_the_csrf_header(
    client: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    await make_account()
    login = await client.post("/api/auth/login", json={"email": "owner@dental.example", "password": PASSWORD})
    csrf = login.json()["csrf_token"]
    assert (await client.post("/api/auth/logout")).status_code == 403
    assert (await client.post("/api/auth/logout", headers={"X-CSRF-Token": "forged"})).status_code == 403
    assert (await client.get("/api/auth/me")).status_code == 200, "safe methods need no CSRF token"
    assert (await client.post("/api/auth/logout", headers={"X-CSRF-Token": csrf})).status_code == 204
    assert (await client.get("/api/auth/me")).status_code == 401


@pytest.mark.parametrize(
    ("email", "password", "account_kwargs"),
    [
        ("owner@dental.example", "wrong password!", {}),
        ("nobody@dental.example", PASSWORD, {}),
        ("owner@dental.example", PASSWORD, {"user_active": False}),
        ("owner@dental.example", PASSWORD, {"business_active": False}),
    ],
)
async def test_every_refusal_looks_the_same(
    client: httpx.AsyncClient,
    make_account: MakeAccount,
    email: str,
    password: str,
    account_kwargs: dict[str, bool],
) -> None:
    await make_account("owner@dental.example", **account_kwargs)
    response = await api_login(client, email, password)
    assert response.status_code == 401
    assert response.json() == {"detail": "wrong e-mail or password"}


async def test_bad_input_is_a_422_with_field_errors(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/auth/login", json={"email": "not-an-email", "password": ""})
    assert response.status_code == 422
    fields = {tuple(error["loc"]) for error in response.json()["detail"]}
    assert fields == {("body", "email"), ("body", "password")}


async def test_refresh_rotates_and_a_reused_token_ends_the_session(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine
) -> None:
    await make_account()
    first = (await api_login(client, "owner@dental.example")).json()
    rotated = await client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert rotated.status_code == 200
    second = rotated.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert (await client.get("/api/auth/me", headers=bearer(second["access_token"]))).status_code == 200

    replayed = await client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert replayed.status_code == 401
    # The copy was detected: the whole session is gone, including the legitimate newer tokens.
    assert (
        await client.post("/api/auth/refresh", json={"refresh_token": second["refresh_token"]})
    ).status_code == 401
    assert (await client.get("/api/auth/me", headers=bearer(second["access_token"]))).status_code == 401
    async with db_engine.connect() as conn:
        reason = await conn.scalar(text("SELECT revoked_reason FROM auth_sessions"))
    assert reason == "refresh_reuse"


async def test_refresh_tokens_are_stored_only_as_hashes(
    client: httpx.AsyncClient, make_account: MakeAccount, db_engine: AsyncEngine
) -> None:
    await make_account()
    raw = (await api_login(client, "owner@dental.example")).json()["refresh_token"]
    async with db_engine.connect() as conn:
        stored = (await conn.execute(select(RefreshToken.token_hash))).scalars().all()
        password_hash = await conn.scalar(text("SELECT password_hash FROM users"))
    assert stored == [hash_token(raw)]
    assert raw not in stored
    assert str(password_hash).startswith("$argon2id$")


async def test_browser_refresh_uses_the_cookie_and_needs_csrf(
    client: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    await make_account()
    login = await client.post("/api/auth/login", json={"email": "owner@dental.example", "password": PASSWORD})
    assert (await client.post("/api/auth/refresh")).status_code == 403
    refreshed = await client.post("/api/auth/refresh", headers={"X-CSRF-Token": login.json()["csrf_token"]})
    assert refreshed.status_code == 200
    assert refreshed.json()["client"] == "browser"
    assert client.cookies["prosaas_csrf"] == refreshed.json()["csrf_token"]


async def test_logout_ends_access_and_refresh_at_once(
    client: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    await make_account()
    tokens = (await api_login(client, "owner@dental.example")).json()
    other = (await api_login(client, "owner@dental.example")).json()
    assert (await client.post("/api/auth/logout", headers=bearer(tokens["access_token"]))).status_code == 204
    me = await client.get("/api/auth/me", headers=bearer(tokens["access_token"]))
    assert me.status_code == 401
    assert me.json()["detail"] == "this session has ended"
    assert (
        await client.post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    ).status_code == 401
    assert (await client.get("/api/auth/me", headers=bearer(other["access_token"]))).status_code == 200


async def test_forged_and_expired_access_tokens_are_refused(
    client: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    account = await make_account()

    def signed_token(secret: str, ttl_s: int, now: datetime | None = None) -> str:
        signed, _ = issue_access_token(
            secret,
            user_id=account.user_id,
            session_id=uuid.uuid4(),
            role="owner",
            business_id=account.business_id,
            impersonating=False,
            ttl_s=ttl_s,
            now=now,
        )
        return signed

    forged = signed_token("someone-elses-secret-0123456789abcdef", 600)
    expired = signed_token(DEV_AUTH_SECRET, 60, now=datetime.now(UTC) - timedelta(hours=1))
    for token in (forged, expired, "not.a.jwt"):
        response = await client.get("/api/auth/me", headers=bearer(token))
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
    assert (await client.get("/api/auth/me")).status_code == 401
