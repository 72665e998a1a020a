"""A bounded schemathesis run over the api's OpenAPI schema against a real server (Postgres, Redis):
whatever the generated input, no operation answers 5xx. Bad input must be a 4xx with field errors.

Signed in as the owner of a business with a few leads, so tenant routes run past authentication;
``auth_logout`` is left out (it would end the session the rest of the run uses).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from redis import Redis as SyncRedis
from schemathesis.core.result import Err
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from prosaas_api.auth.passwords import hash_password
from prosaas_common.db import Base, create_session_factory, unit_of_work
from prosaas_common.models import Business, Lead, User, UserRole
from prosaas_common.provision import provision_business
from prosaas_common.settings import to_asyncpg_url
from tests.api.conftest import PASSWORD
from tests.support import TEST_REDIS_URL, free_port, service_env, wait_for_http

EXAMPLES_PER_OPERATION = 12


async def seed(database_url: str) -> None:
    engine = create_async_engine(to_asyncpg_url(database_url))
    try:
        async with unit_of_work(create_session_factory(engine)) as db:
            business = Business(name="Fuzzed Dental")
            db.add(business)
            await db.flush()
            await provision_business(db, business)
            db.add(
                User(
                    email="owner@fuzz.example",
                    role=UserRole.OWNER,
                    business_id=business.id,
                    password_hash=hash_password(PASSWORD),
                )
            )
            status_id = await db.scalar(text("SELECT id FROM lead_statuses WHERE is_default"))
            for n in range(5):
                db.add(
                    Lead(
                        business_id=business.id,
                        status_id=status_id,
                        rank=-n,
                        first_name=f"Lead{n}",
                        phone=f"+1415555{1000 + n}",
                    )
                )
    finally:
        await engine.dispose()


async def empty(database_url: str) -> None:
    engine = create_async_engine(to_asyncpg_url(database_url))
    try:
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        async with engine.begin() as conn:
            await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def live_api(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The api as a real process on a free port, with a signed-in owner. Its output goes to a file (a
    pipe nobody reads would block the server once full) that must hold no traceback at the end."""
    asyncio.run(empty(database_url))
    asyncio.run(seed(database_url))
    port = free_port()
    env = service_env(
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": TEST_REDIS_URL,
            "API_HOST": "127.0.0.1",
            "API_PORT": str(port),
            "LOG_LEVEL": "WARNING",
        }
    )
    log_file = tmp_path_factory.mktemp("fuzz") / "api.log"
    base = f"http://127.0.0.1:{port}"
    with log_file.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "prosaas_api", "serve"], env=env, stdout=sink, stderr=subprocess.STDOUT
        )
        try:
            wait_for_http(f"{base}/api/health")
            login = httpx.post(
                f"{base}/api/auth/login",
                json={"email": "owner@fuzz.example", "password": PASSWORD, "client": "api"},
            )
            assert login.status_code == 200, login.text
            yield {"base": base, "headers": {"Authorization": f"Bearer {login.json()['access_token']}"}}
        finally:
            process.terminate()
            process.wait(10)
            asyncio.run(empty(database_url))
            SyncRedis.from_url(TEST_REDIS_URL).flushdb()
    output = log_file.read_text()
    assert "Traceback" not in output, output[output.find("Traceback") - 300 :][:3000]


def test_no_input_makes_a_server_error(live_api: dict[str, Any]) -> None:
    """Every operation (but logout) gets generated inputs; each answer must be below 500."""
    schema = schemathesis.openapi.from_url(f"{live_api['base']}/api/openapi.json")
    failures: list[str] = []
    answers: Counter[int] = Counter()
    tried = 0
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()
        operation = result.ok()
        if schema.get_operation_id(operation) == "auth_logout":
            continue
        tried += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def exercise(case: Any) -> None:
            response = case.call(base_url=live_api["base"], headers=live_api["headers"], timeout=30)
            answers[response.status_code] += 1
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:300]}"
                )

        exercise()
    assert tried > 50
    # Enough inputs reached the handlers: successes and validation refusals both occur.
    assert sum(answers.values()) > 5 * tried, answers
    assert answers[200] > 0
    assert answers[422] > 0
    assert failures == []
