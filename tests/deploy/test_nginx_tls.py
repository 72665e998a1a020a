"""The production nginx configuration, live on loopback: degraded upstreams and the TLS template.

Fixtures (the api and calls processes, the nginx instances) live in tests/deploy/nginx_fixtures.py.
"""

from __future__ import annotations

import json
import socket
import ssl
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from prosaas_common.settings import DEV_INTERNAL_SECRET
from tests.deploy.nginx_fixtures import (
    NGINX_HEALTH,
    Degraded,
    Services,
    Tls,
    new_id,
    wait_access_record,
    wait_logged,
)
from tests.deploy.nginx_support import (
    assert_front_headers,
    client,
    poll,
)

# --- degraded upstreams: names resolved per request, errors keep the headers ---------------------------


def test_nginx_starts_before_upstream_names_resolve(degraded: Degraded) -> None:
    assert degraded.queries_at_start == [], "nginx resolved upstream names at start"
    with client(degraded.front.url) as http:
        health = http.get("/health")
    assert health.status_code == 200
    assert health.json() == NGINX_HEALTH
    assert_front_headers(health)


def test_proxied_503_keeps_the_security_headers(degraded: Degraded) -> None:
    request_id = new_id("not-ready")
    with client(degraded.front.url) as http:
        response = http.get("/readyz", headers={"X-Request-ID": request_id})
    assert response.status_code == 503
    body = response.json()
    assert (body["service"], body["status"]) == ("api", "not_ready")
    assert body["checks"]["postgres"]["ok"] is False
    assert assert_front_headers(response) == request_id
    assert "api.prosaas.test" in degraded.dns.queries, "the api name was resolved at request time"
    assert wait_access_record(degraded.front.nginx, request_id)["upstream_status"] == "503"


def test_unresolvable_upstream_is_a_502_until_its_name_resolves(degraded: Degraded) -> None:
    """A container that is not there yet (or was recreated) is found by name without a reload."""
    request_id = new_id("no-calls")
    with client(degraded.front.url) as http:
        failed = http.post("/webhook/twilio/voice", headers={"X-Request-ID": request_id})
        assert failed.status_code == 502
        assert failed.headers["content-type"].startswith("text/html")
        assert assert_front_headers(failed) == request_id
        ws_failed = http.get("/ws/health", headers={"Connection": "Upgrade", "Upgrade": "websocket"})
        assert ws_failed.status_code == 502
        assert_front_headers(ws_failed)
        assert "calls.prosaas.test" in degraded.dns.queries

        # The name appears (the container started): the next requests resolve it again and reach
        # calls, without a reload (nginx keeps no negative answer here; positive ones for valid=10s).
        degraded.dns.records["calls.prosaas.test"] = "127.0.0.1"
        reached: list[httpx.Response] = []

        def calls_answers() -> bool:
            response = http.post("/webhook/twilio/voice")
            reached[:] = [response]
            return response.status_code == 404

        poll(calls_answers, "calls reachable by name after it resolves", timeout=20.0, interval=0.25)
    assert reached[0].json() == {"detail": "Not Found"}
    assert_front_headers(reached[0])


# --- the TLS template ---------------------------------------------------------------------------------


def tls_context(cert: Path, **versions: ssl.TLSVersion) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(cert))
    for name, version in versions.items():
        setattr(context, name, version)
    return context


def handshake(port: int, context: ssl.SSLContext) -> tuple[str | None, str | None]:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as sock,
        context.wrap_socket(sock, server_hostname="127.0.0.1") as tls_sock,
    ):
        return tls_sock.version(), tls_sock.selected_alpn_protocol()


def test_plain_http_redirects_to_https_except_health(tls: Tls) -> None:
    with client(tls.http_url) as http:
        health = http.get("/health")
        redirect = http.get("/api/health", params={"x": "1"})
        unknown = http.post("/webhook/twilio/voice")
    assert health.status_code == 200
    assert health.json() == NGINX_HEALTH
    assert_front_headers(health)
    for response in (redirect, unknown):
        assert response.status_code == 301
        assert_front_headers(response)
    assert redirect.headers["location"] == "https://127.0.0.1/api/health?x=1"
    assert unknown.headers["location"] == "https://127.0.0.1/webhook/twilio/voice"


def test_https_serves_the_api_with_hsts(tls: Tls, services: Services) -> None:
    request_id = new_id("tls")
    with client(tls.https_url, verify=tls_context(tls.cert)) as https:
        health = https.get("/api/health", headers={"X-Request-ID": request_id})
        unknown = https.get("/nope")
        metrics = https.get("/metrics", params={"token": DEV_INTERNAL_SECRET})
        nginx_health = https.get("/health")
    assert health.status_code == 200
    assert health.json()["service"] == "api"
    assert assert_front_headers(health, hsts=True) == request_id
    wait_logged(services.api, request_id)
    for response, status in ((unknown, 404), (metrics, 404), (nginx_health, 200)):
        assert response.status_code == status
        assert_front_headers(response, hsts=True)
    assert wait_access_record(tls.nginx, request_id)["protocol"] in {"HTTP/1.1", "HTTP/2.0"}


def test_wss_round_trip_through_tls(tls: Tls) -> None:
    with connect(
        f"wss://127.0.0.1:{tls.https_port}/ws/health",
        ssl=tls_context(tls.cert),
        proxy=None,
        open_timeout=20,
    ) as ws:
        assert json.loads(ws.recv(timeout=20))["service"] == "calls"
        ws.send("ping")
        assert json.loads(ws.recv(timeout=20)) == {"type": "pong"}


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
def test_tls_versions_and_http2(tls: Tls) -> None:
    v12 = tls_context(tls.cert, maximum_version=ssl.TLSVersion.TLSv1_2)
    assert handshake(tls.https_port, v12)[0] == "TLSv1.2"
    v13 = tls_context(tls.cert, minimum_version=ssl.TLSVersion.TLSv1_3)
    v13.set_alpn_protocols(["h2", "http/1.1"])
    assert handshake(tls.https_port, v13) == ("TLSv1.3", "h2")

    # A client that offers TLS 1.1 at most (its own security level lowered so it really does): the
    # server refuses with a protocol_version alert.
    old = tls_context(tls.cert, minimum_version=ssl.TLSVersion.TLSv1, maximum_version=ssl.TLSVersion.TLSv1_1)
    old.set_ciphers("DEFAULT:@SECLEVEL=0")
    with pytest.raises(ssl.SSLError) as refused:
        handshake(tls.https_port, old)
    assert "PROTOCOL_VERSION" in str(refused.value).upper(), refused.value
