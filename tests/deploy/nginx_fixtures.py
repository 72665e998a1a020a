"""Processes and nginx instances shared by the live nginx suites (package scope: started once).

Three nginx instances are rendered from the real templates (see tests/deploy/nginx_support.py):

- ``front``: the http template in front of a healthy api and calls service;
- ``degraded``: the http template whose upstream *names* are resolved by a small DNS server of the
  test (one name answers, one does not yet), in front of an api whose database port is closed;
- ``tls``: the ssl template with a self-signed certificate made by the openssl CLI.

Nothing is skipped: without /usr/sbin/nginx the tests fail and say how to install it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.nginx_support import (
    FakeDns,
    Nginx,
    Service,
    generate_certificate,
    poll,
)
from tests.support import TEST_REDIS_URL, closed_port, free_port, service_env

BODY_LIMIT = "1m"
NGINX_HEALTH = {"status": "ok", "service": "nginx"}
HEX_ID = re.compile(r"[0-9a-f]{32}")


def new_id(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:12]}"


@dataclass
class Services:
    api: Service
    calls: Service
    broken_api: Service  # its DATABASE_URL points at a closed port: /readyz answers 503


@dataclass
class Front:
    nginx: Nginx
    url: str
    port: int


@dataclass
class Degraded:
    front: Front
    dns: FakeDns
    queries_at_start: list[str]


@dataclass
class Tls:
    nginx: Nginx
    http_url: str
    https_url: str
    https_port: int
    cert: Path


@pytest.fixture(scope="package")
def services(database_url: str) -> Iterator[Services]:
    """api, calls and a broken api, started as processes on loopback and logging at DEBUG.

    DEBUG makes the services log probe requests too, so "never reached the service" can be checked.
    Redis is only PINGed by readiness: the module uses ``TEST_REDIS_URL`` directly (the ``redis_url``
    fixture is per test).
    """
    base = {"REDIS_URL": TEST_REDIS_URL, "LOG_LEVEL": "DEBUG"}
    api_port, calls_port, broken_port = free_port(), free_port(), free_port()
    dead_database = f"postgresql://postgres@127.0.0.1:{closed_port()}/prosaas"
    started = [
        Service.start(
            "api",
            "prosaas_api",
            api_port,
            service_env(
                {**base, "DATABASE_URL": database_url, "API_HOST": "127.0.0.1", "API_PORT": str(api_port)}
            ),
        ),
        Service.start(
            "calls",
            "prosaas_calls",
            calls_port,
            service_env(
                {
                    **base,
                    "DATABASE_URL": database_url,
                    "CALLS_HOST": "127.0.0.1",
                    "CALLS_PORT": str(calls_port),
                }
            ),
        ),
        Service.start(
            "broken-api",
            "prosaas_api",
            broken_port,
            service_env(
                {
                    **base,
                    "DATABASE_URL": dead_database,
                    "API_HOST": "127.0.0.1",
                    "API_PORT": str(broken_port),
                }
            ),
        ),
    ]
    try:
        api, calls, broken = started
        api.wait_ready("/api/health")
        calls.wait_ready("/health")
        broken.wait_ready("/api/health")
        yield Services(api=api, calls=calls, broken_api=broken)
    finally:
        for service in started:
            service.stop()


def base_values(services: Services, http_port: int) -> dict[str, str]:
    return {
        "API_UPSTREAM": f"127.0.0.1:{services.api.port}",
        "CALLS_UPSTREAM": f"127.0.0.1:{services.calls.port}",
        "NGINX_RESOLVER": "127.0.0.1",
        "SERVER_NAME": "_",
        "NGINX_HTTP_PORT": f"127.0.0.1:{http_port}",
        "CLIENT_MAX_BODY_SIZE": BODY_LIMIT,
    }


def assert_clean_stop(nginx: Nginx) -> None:
    errors = nginx.stop()
    serious = [line for line in errors.splitlines() if re.search(r"\[(emerg|alert|crit)\]", line)]
    assert not serious, errors


@pytest.fixture(scope="package")
def front(services: Services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Front]:
    port = free_port()
    nginx = Nginx.start(tmp_path_factory.mktemp("front"), "http", base_values(services, port), [port])
    try:
        yield Front(nginx=nginx, url=f"http://127.0.0.1:{port}", port=port)
    finally:
        assert_clean_stop(nginx)


@pytest.fixture(scope="package")
def degraded(services: Services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Degraded]:
    """Upstreams by name: ``api.prosaas.test`` → the broken api; ``calls.prosaas.test`` → NXDOMAIN."""
    dns = FakeDns({"api.prosaas.test": "127.0.0.1"})
    with dns.running():
        port = free_port()
        values = {
            **base_values(services, port),
            "API_UPSTREAM": f"api.prosaas.test:{services.broken_api.port}",
            "CALLS_UPSTREAM": f"calls.prosaas.test:{services.calls.port}",
            "NGINX_RESOLVER": f"127.0.0.1:{dns.port}",
        }
        nginx = Nginx.start(tmp_path_factory.mktemp("degraded"), "http", values, [port])
        try:
            front = Front(nginx=nginx, url=f"http://127.0.0.1:{port}", port=port)
            yield Degraded(front=front, dns=dns, queries_at_start=list(dns.queries))
        finally:
            assert_clean_stop(nginx)


@pytest.fixture(scope="package")
def tls(services: Services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tls]:
    directory = tmp_path_factory.mktemp("tls")
    cert, key = generate_certificate(directory)
    http_port, https_port = free_port(), free_port()
    values = {
        **base_values(services, http_port),
        "NGINX_HTTPS_PORT": f"127.0.0.1:{https_port}",
        "SSL_CERTIFICATE": str(cert),
        "SSL_CERTIFICATE_KEY": str(key),
    }
    nginx = Nginx.start(directory / "prefix", "ssl", values, [http_port, https_port])
    try:
        yield Tls(
            nginx=nginx,
            http_url=f"http://127.0.0.1:{http_port}",
            https_url=f"https://127.0.0.1:{https_port}",
            https_port=https_port,
            cert=cert,
        )
    finally:
        assert_clean_stop(nginx)


def wait_logged(service: Service, request_id: str) -> dict[str, Any]:
    """The service's ``http.request`` event carrying ``request_id`` (waits for it)."""
    found: list[dict[str, Any]] = []

    def logged() -> bool:
        found[:] = [e for e in service.events("http.request") if e.get("request_id") == request_id]
        return bool(found)

    poll(logged, f"{service.name} logging http.request with request_id={request_id}")
    return found[0]


def wait_access_record(nginx: Nginx, request_id: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = []

    def logged() -> bool:
        found[:] = [r for r in nginx.access_records() if r["request_id"] == request_id]
        return bool(found)

    poll(logged, f"nginx access log line with request_id={request_id}")
    return found[0]
