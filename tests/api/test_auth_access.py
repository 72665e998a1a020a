"""Sign-in throttling, the permission matrix and its single dependency, the admin bootstrap command."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated

import httpx
import pytest
from fastapi import Depends

from prosaas_api.app import create_app
from prosaas_api.auth.permissions import MATRIX, Permission
from prosaas_api.auth.principal import Principal, require
from prosaas_api.settings import ApiSettings
from prosaas_common.models import UserRole
from prosaas_common.settings import ConfigError, build_settings
from tests.api.conftest import PASSWORD, Account
from tests.support import ROOT, asgi_client, service_env

MakeAccount = Callable[..., Awaitable[Account]]


async def login(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post("/api/auth/login", json={"email": email, "password": password, "client": "api"})


async def test_an_account_is_locked_after_its_failures_with_retry_after(
    client: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    await make_account()
    for _ in range(5):
        assert (await login(client, "owner@dental.example", "wrong password!")).status_code == 401
    locked = await login(client, "owner@dental.example", PASSWORD)
    assert locked.status_code == 429, "even the right password waits out the window"
    assert 0 < int(locked.headers["retry-after"]) <= 900
    other = await make_account("other@dental.example")
    assert (await login(client, other.email, PASSWORD)).status_code == 200, "other accounts are unaffected"


async def test_a_success_clears_the_account_counter(
    client: httpx.AsyncClient, make_account: MakeAccount
) -> None:
    await make_account()
    for _ in range(4):
        await login(client, "owner@dental.example", "wrong password!")
    assert (await login(client, "owner@dental.example", PASSWORD)).status_code == 200
    for _ in range(4):
        assert (await login(client, "owner@dental.example", "wrong password!")).status_code == 401


async def test_one_ip_trying_many_accounts_is_throttled(
    make_settings: Callable[..., ApiSettings], make_account: MakeAccount
) -> None:
    await make_account()
    async with asgi_client(create_app(make_settings(login_max_failures_per_ip=3))) as client:
        for n in range(3):
            assert (await login(client, f"guess{n}@dental.example", "whatever1234")).status_code == 401
        refused = await login(client, "owner@dental.example", PASSWORD)
    assert refused.status_code == 429
    assert refused.headers["retry-after"]


def test_production_refuses_a_default_or_short_auth_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    base = {
        "app_env": "production",
        "database_url": "postgresql://db/x",
        "redis_url": "redis://r:6379/0",
        "internal_secret": "0123456789abcdef0123",
    }
    for secret in (None, "short-but-16-chars-x"):
        values = dict(base) if secret is None else {**base, "auth_secret": secret}
        with pytest.raises(ConfigError) as refused:
            build_settings(ApiSettings, **values)
        assert refused.value.lines[0].startswith("AUTH_SECRET:")
    assert build_settings(
        ApiSettings, **base, auth_secret="a" * 8 + "0123456789abcdef0123456789"
    ).secure_cookies


# ---- permissions ------------------------------------------------------------------------------------


def documented_matrix() -> dict[str, set[str]]:
    rows: dict[str, set[str]] = {}
    for line in (ROOT / "docs" / "permissions.md").read_text().splitlines():
        match = re.match(r"\|\s*`([a-z_.]+)`\s*\|(.+)\|\s*$", line)
        if match:
            cells = [c.strip() for c in match.group(2).split("|")]
            roles = ["system_admin", "owner", "admin", "agent"]
            rows[match.group(1)] = {role for role, cell in zip(roles, cells, strict=False) if cell == "yes"}
    return rows


def test_the_documented_matrix_is_the_enforced_one() -> None:
    assert documented_matrix() == {p.value: {r.value for r in roles} for p, roles in MATRIX.items()}


async def test_require_grants_by_role_and_refuses_with_403(
    make_settings: Callable[..., ApiSettings], make_account: MakeAccount
) -> None:
    app = create_app(make_settings())

    @app.get("/test/users")
    async def manage_users(
        principal: Annotated[Principal, Depends(require(Permission.USERS_MANAGE))],
    ) -> dict[str, str]:
        return {"role": principal.role.value}

    admin = await make_account("admin@dental.example", UserRole.ADMIN)
    await make_account("agent@dental.example", UserRole.AGENT, business_id=admin.business_id)
    async with asgi_client(app) as client:
        for email, expected in (("admin@dental.example", 200), ("agent@dental.example", 403)):
            token = (await login(client, email, PASSWORD)).json()["access_token"]
            response = await client.get("/test/users", headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == expected, email
        assert (await client.get("/test/users")).status_code == 401


# ---- bootstrap command --------------------------------------------------------------------------------


def run_with_stdin(env: dict[str, str], email: str, password: str) -> tuple[int, str]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "prosaas_api",
            "admin",
            "create-system-admin",
            "--email",
            email,
            "--password-stdin",
        ],
        env=env,
        cwd=ROOT,
        input=password + "\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode, done.stdout + done.stderr


async def test_create_system_admin_then_sign_in(
    database_url: str, redis_url: str, client: httpx.AsyncClient, make_account: MakeAccount, tmp_path: Path
) -> None:
    env = service_env({"DATABASE_URL": database_url, "REDIS_URL": redis_url})
    code, out = run_with_stdin(env, "Root@Platform.example", "a long enough password")
    assert code == 0, out
    assert "created system admin Root@Platform.example" in out
    tokens = (await login(client, "root@platform.example", "a long enough password")).json()
    me = await client.get("/api/auth/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.json()["role"] == "system_admin"
    assert me.json()["business"] is None

    assert run_with_stdin(env, "ROOT@platform.example", "another long password")[0] == 1
    code, out = run_with_stdin(env, "second@platform.example", "short")
    assert code == 2
    assert "at least 12 characters" in out
    assert run_with_stdin(env, "not-an-email", "a long enough password")[0] == 2
