"""API operations endpoints: liveness, readiness, version, metrics, request ids and quiet access logs."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from datetime import datetime

import httpx
import pytest

from prosaas_api.app import create_app
from prosaas_api.settings import ApiSettings
from prosaas_common.logging import configure_logging
from prosaas_common.settings import DEV_INTERNAL_SECRET, LogFormat
from tests.api.conftest import METRICS_TOKEN
from tests.support import asgi_client, closed_port


async def test_liveness_names_service_and_version(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "service": "api", "version": "0.1.0"}


async def test_readyz_is_200_when_postgres_and_redis_answer(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert body["checks"]["postgres"]["ok"] is True
    assert body["checks"]["redis"]["ok"] is True


async def test_readyz_is_503_when_the_database_port_is_closed(
    make_settings: Callable[..., ApiSettings],
) -> None:
    settings = make_settings(database_url=f"postgresql://postgres@127.0.0.1:{closed_port()}/x")
    async with asgi_client(create_app(settings)) as http:
        response = await http.get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["postgres"]["ok"] is False
    assert (
        "refused" in checks["postgres"]["error"].lower() or "connect" in checks["postgres"]["error"].lower()
    )
    assert checks["redis"]["ok"] is True


async def test_readyz_is_503_when_the_redis_port_is_closed(make_settings: Callable[..., ApiSettings]) -> None:
    settings = make_settings(redis_url=f"redis://127.0.0.1:{closed_port()}/0")
    async with asgi_client(create_app(settings)) as http:
        response = await http.get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["redis"]["ok"] is False
    assert checks["redis"]["error"]
    assert checks["postgres"]["ok"] is True


async def test_version_reports_build_and_uptime(make_settings: Callable[..., ApiSettings]) -> None:
    settings = make_settings(git_sha="abc1234", build_id="build-42")
    async with asgi_client(create_app(settings)) as http:
        body = (await http.get("/version")).json()
    assert body["version"] == "0.1.0"
    assert body["git_sha"] == "abc1234"
    assert body["build"] == "build-42"
    assert datetime.fromisoformat(body["started_at"]).tzinfo is not None
    assert body["uptime_s"] >= 0


@pytest.mark.parametrize("path", ["/metrics", "/metrics.json"])
@pytest.mark.parametrize(
    "headers_or_query",
    [{}, {"headers": {"Authorization": "Bearer wrong"}}, {"params": {"token": "wrong"}}],
)
async def test_metrics_need_a_valid_token(
    client: httpx.AsyncClient, path: str, headers_or_query: dict[str, dict[str, str]]
) -> None:
    response = await client.get(path, **headers_or_query)  # type: ignore[arg-type]
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "auth",
    [
        {"headers": {"Authorization": f"Bearer {METRICS_TOKEN}"}},
        {"params": {"token": METRICS_TOKEN}},
        {"headers": {"Authorization": f"Bearer {DEV_INTERNAL_SECRET}"}},
    ],
)
async def test_metrics_accept_metrics_token_or_internal_secret(
    client: httpx.AsyncClient, auth: dict[str, dict[str, str]]
) -> None:
    response = await client.get("/metrics", **auth)  # type: ignore[arg-type]
    assert response.status_code == 200
    assert "http_requests_total" in response.text


async def test_metrics_json_has_real_figures(client: httpx.AsyncClient) -> None:
    for _ in range(3):
        await client.get("/api/health")
    await client.get("/api/no-such-thing")
    response = await client.get("/metrics.json", params={"token": METRICS_TOKEN})
    body = response.json()
    routes = {(r["route"], r["method"]): r for r in body["routes"]}
    health = routes[("/api/health", "GET")]
    assert health["count"] == 3
    assert health["by_status"] == {"200": 3}
    assert 0 < health["latency_ms"]["p50"] <= health["latency_ms"]["p95"] <= health["latency_ms"]["max"]
    assert routes[("<unmatched>", "GET")]["by_status"] == {"404": 1}
    assert body["requests_total"] == 4
    assert body["uptime_s"] >= 0
    assert set(body["db_pool"]) == {"size", "checked_out", "idle", "overflow"}


async def test_prometheus_counts_by_route_template(client: httpx.AsyncClient) -> None:
    await client.get("/readyz")
    text = (await client.get("/metrics", params={"token": METRICS_TOKEN})).text
    assert 'http_requests_total{method="GET",route="/readyz",status="200"} 1.0' in text
    assert 'db_pool_connections{state="checked_out"}' in text
    assert "process_uptime_seconds" in text


async def test_request_id_is_echoed_or_generated(client: httpx.AsyncClient) -> None:
    given = await client.get("/api/health", headers={"X-Request-ID": "req-abc.123"})
    assert given.headers["x-request-id"] == "req-abc.123"
    generated = await client.get("/api/health")
    assert len(generated.headers["x-request-id"]) == 32
    hostile = await client.get("/api/health", headers={"X-Request-ID": "bad id\nINJECTED"})
    assert hostile.headers["x-request-id"] != "bad id\nINJECTED"
    assert " " not in hostile.headers["x-request-id"]


async def test_access_log_binds_request_id_and_skips_probes_at_info(
    make_settings: Callable[..., ApiSettings],
) -> None:
    stream = io.StringIO()
    configure_logging("api", "INFO", LogFormat.JSON, stream=stream)
    async with asgi_client(create_app(make_settings())) as http:
        await http.get("/api/health")
        await http.get("/readyz")
        await http.get("/version", headers={"X-Request-ID": "trace-me"})
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    requests = [r for r in records if r["event"] == "http.request"]
    assert [(r["path"], r["status"]) for r in requests] == [("/version", 200)]
    assert requests[0]["request_id"] == "trace-me"
    assert requests[0]["route"] == "/version"
    assert all(r["level"] in {"info", "warning"} for r in records)


async def test_openapi_docs_are_served_under_api(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/docs")).status_code == 200
    spec = (await client.get("/api/openapi.json")).json()
    assert "/readyz" in spec["paths"]


async def test_validation_errors_are_4xx_not_500(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/health")
    assert response.status_code == 405
