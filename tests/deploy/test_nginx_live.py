"""The production nginx configuration, run for real on loopback in front of the api and calls processes.

Three nginx instances are rendered from the real templates (see tests/deploy/nginx_support.py):

- ``front``: the http template in front of a healthy api and calls service;
- ``degraded``: the http template whose upstream *names* are resolved by a small DNS server of the
  test (one name answers, one does not yet), in front of an api whose database port is closed;
- ``tls``: the ssl template with a self-signed certificate made by the openssl CLI.

Nothing is skipped: without /usr/sbin/nginx the tests fail and say how to install it.
"""

from __future__ import annotations

import json
import re
import socket
import ssl
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from prosaas_common.settings import DEV_INTERNAL_SECRET
from tests.deploy.nginx_support import (
    NGINX_DIR,
    TEMPLATE_VARIABLES,
    TEMPLATES,
    FakeDns,
    Nginx,
    Service,
    assert_front_headers,
    client,
    envsubst,
    generate_certificate,
    placeholders,
    poll,
    render_template,
    require_nginx,
    write_prefix,
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


@pytest.fixture(scope="module")
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


@pytest.fixture(scope="module")
def front(services: Services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Front]:
    port = free_port()
    nginx = Nginx.start(tmp_path_factory.mktemp("front"), "http", base_values(services, port), [port])
    try:
        yield Front(nginx=nginx, url=f"http://127.0.0.1:{port}", port=port)
    finally:
        assert_clean_stop(nginx)


@pytest.fixture(scope="module")
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


@pytest.fixture(scope="module")
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


# --- the files themselves ---------------------------------------------------------------------------


def test_templates_use_only_documented_variables() -> None:
    readme = (NGINX_DIR / "README.md").read_text()
    for variable in TEMPLATE_VARIABLES:
        assert f"`{variable}`" in readme, f"README.md does not document {variable}"
    used_somewhere: set[str] = set()
    for path in TEMPLATES.values():
        text = path.read_text()
        used = placeholders(text)
        assert used <= TEMPLATE_VARIABLES, f"{path.name}: undocumented {sorted(used - TEMPLATE_VARIABLES)}"
        header = "\n".join(line for line in text.splitlines() if line.startswith("#"))
        for variable in used:
            assert re.search(rf"^#\s+{variable}\s", header, re.MULTILINE), f"{path.name}: {variable} header"
        used_somewhere |= used
    assert used_somewhere == TEMPLATE_VARIABLES, "a documented variable is used by no template"
    # Files that are mounted as they are must not expect a substitution.
    for path in [NGINX_DIR / "nginx.conf", *sorted((NGINX_DIR / "snippets").iterdir())]:
        assert not placeholders(path.read_text()), f"{path.name} is not rendered but has placeholders"


def test_envsubst_mimic_leaves_nginx_variables_alone() -> None:
    text = "set $api ${API_UPSTREAM}; x $API_UPSTREAM $API_UPSTREAMS $host ${OTHER} $request_id"
    assert (
        envsubst(text, {"API_UPSTREAM": "a:1"})
        == "set $api a:1; x a:1 $API_UPSTREAMS $host ${OTHER} $request_id"
    )


@pytest.mark.parametrize("kind", ["http", "ssl"])
def test_production_values_pass_nginx_t_with_unresolvable_names(kind: str, tmp_path: Path) -> None:
    """Docker's names and resolver do not exist here: nginx must still accept (and start on) the file."""
    nginx = require_nginx()
    values = {
        "API_UPSTREAM": "prosaas-api:5000",
        "CALLS_UPSTREAM": "prosaas-calls:5050",
        "NGINX_RESOLVER": "127.0.0.11",
        "SERVER_NAME": "_",
        "NGINX_HTTP_PORT": "80",
        "CLIENT_MAX_BODY_SIZE": "10m",
    }
    if kind == "ssl":
        cert, key = generate_certificate(tmp_path)
        values |= {"NGINX_HTTPS_PORT": "443", "SSL_CERTIFICATE": str(cert), "SSL_CERTIFICATE_KEY": str(key)}
    conf = write_prefix(tmp_path / "prefix", kind, values)
    checked = subprocess.run(
        [str(nginx), "-p", str(tmp_path / "prefix"), "-e", "stderr", "-c", str(conf), "-t"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
    assert render_template(kind, values).count("set $api_upstream prosaas-api:5000;") == 1


# --- routing ------------------------------------------------------------------------------------------


def test_health_is_answered_by_nginx_itself(front: Front, services: Services) -> None:
    probe, marker = new_id("probe"), new_id("marker")
    with client(front.url) as http:
        response = http.get("/health", headers={"X-Request-ID": probe})
        assert response.status_code == 200
        assert response.json() == NGINX_HEALTH
        assert assert_front_headers(response) == probe
        # Barrier: requests after the probe, through both services and nginx's access log.
        http.get("/api/health", headers={"X-Request-ID": marker})
        http.post("/webhook", headers={"X-Request-ID": marker})
    wait_logged(services.api, marker)
    wait_logged(services.calls, marker)
    wait_access_record(front.nginx, marker)
    assert probe not in services.api.request_ids() | services.calls.request_ids()
    assert not [r for r in front.nginx.access_records() if r["path"] == "/health"], "probes are not logged"


def test_api_paths_are_kept(front: Front, services: Services) -> None:
    request_id = new_id("api-health")
    with client(front.url) as http:
        response = http.get("/api/health", headers={"X-Request-ID": request_id})
    assert response.status_code == 200
    assert response.json()["service"] == "api"
    assert assert_front_headers(response) == request_id
    event = wait_logged(services.api, request_id)
    assert (event["path"], event["route"], event["status"]) == ("/api/health", "/api/health", 200)
    record = wait_access_record(front.nginx, request_id)
    assert record["upstream"] == f"127.0.0.1:{services.api.port}"
    assert (record["status"], record["upstream_status"]) == (200, "200")


def test_readyz_and_version_reach_the_api(front: Front) -> None:
    with client(front.url) as http:
        ready = http.get("/readyz")
        version = http.get("/version")
    assert ready.status_code == 200, ready.text
    assert ready.json()["service"] == "api"
    assert ready.json()["status"] == "ready"
    assert version.status_code == 200
    assert version.json()["service"] == "api"
    assert version.json()["uptime_s"] >= 0
    for response in (ready, version):
        assert HEX_ID.fullmatch(assert_front_headers(response))


def test_api_docs_are_reachable(front: Front) -> None:
    with client(front.url) as http:
        docs = http.get("/api/docs")
        schema = http.get("/api/openapi.json")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()
    assert schema.status_code == 200
    assert schema.json()["info"]["title"] == "ProSaaS API"
    for response in (docs, schema):
        assert_front_headers(response)


def test_websocket_round_trip_to_calls(front: Front, services: Services) -> None:
    request_id = new_id("ws")
    with connect(
        f"ws://127.0.0.1:{front.port}/ws/health",
        proxy=None,
        open_timeout=20,
        additional_headers={"X-Request-ID": request_id},
    ) as ws:
        greeting = json.loads(ws.recv(timeout=20))
        assert greeting["status"] == "ok"
        assert greeting["service"] == "calls"
        ws.send("ping")
        assert json.loads(ws.recv(timeout=20)) == {"type": "pong"}
        ws.send("hello")
        assert json.loads(ws.recv(timeout=20))["type"] == "error"
        assert ws.response is not None
        handshake = ws.response.headers
    assert handshake.get_all("X-Frame-Options") == ["DENY"]
    assert handshake.get_all("X-Content-Type-Options") == ["nosniff"]
    assert len(handshake.get_all("X-Request-ID")) == 1
    record = wait_access_record(front.nginx, request_id)
    assert (record["path"], record["status"]) == ("/ws/health", 101)
    assert record["upstream"] == f"127.0.0.1:{services.calls.port}"


def test_webhooks_reach_calls_and_unknown_paths_get_nginx_404(front: Front, services: Services) -> None:
    webhook_id, exact_id, unknown_id = new_id("webhook"), new_id("webhook-exact"), new_id("unknown")
    with client(front.url) as http:
        webhook = http.post(
            "/webhook/twilio/voice", data={"CallSid": "CA123"}, headers={"X-Request-ID": webhook_id}
        )
        exact = http.post("/webhook", headers={"X-Request-ID": exact_id})
        unknown = http.get("/nope", headers={"X-Request-ID": unknown_id})
    # calls has no Twilio routes yet: its JSON 404, with the id it received echoed once.
    for response, request_id in ((webhook, webhook_id), (exact, exact_id)):
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/json"
        assert response.json() == {"detail": "Not Found"}
        assert assert_front_headers(response) == request_id
    assert wait_logged(services.calls, webhook_id)["path"] == "/webhook/twilio/voice"
    assert wait_logged(services.calls, exact_id)["path"] == "/webhook"
    assert webhook_id not in services.api.request_ids()
    # An unknown path: nginx's own HTML 404, which reached no service.
    assert unknown.status_code == 404
    assert unknown.headers["content-type"].startswith("text/html")
    assert "404 Not Found" in unknown.text
    assert "nginx/" not in unknown.text  # server_tokens off
    assert unknown.headers["server"] == "nginx"
    assert assert_front_headers(unknown) == unknown_id
    assert wait_access_record(front.nginx, unknown_id)["upstream"] == ""


@pytest.mark.parametrize(
    ("path", "auth"),
    [
        ("/metrics", {}),
        ("/metrics.json", {}),
        ("/metrics", {"params": {"token": DEV_INTERNAL_SECRET}}),
        ("/metrics.json", {"params": {"token": DEV_INTERNAL_SECRET}}),
        ("/metrics", {"headers": {"Authorization": f"Bearer {DEV_INTERNAL_SECRET}"}}),
        ("/metrics/anything", {}),
        ("/%6Detrics", {"params": {"token": DEV_INTERNAL_SECRET}}),
        ("/api/../metrics", {"params": {"token": DEV_INTERNAL_SECRET}}),
    ],
)
def test_metrics_are_not_reachable_from_outside(
    front: Front, services: Services, path: str, auth: dict[str, dict[str, str]]
) -> None:
    # The token is valid: the api itself serves the metrics on its own port...
    with client(f"http://127.0.0.1:{services.api.port}") as direct:
        assert direct.get("/metrics", params={"token": DEV_INTERNAL_SECRET}).status_code == 200
    # ...but nginx answers 404 itself, whatever the token.
    request_id = new_id("metrics")
    headers = {"X-Request-ID": request_id, **auth.get("headers", {})}
    with client(front.url) as http:
        response = http.get(path, params=auth.get("params"), headers=headers)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "http_requests_total" not in response.text
    assert assert_front_headers(response) == request_id
    assert wait_access_record(front.nginx, request_id)["upstream"] == ""


# --- request ids, limits, compression -----------------------------------------------------------------


def test_client_request_id_reaches_the_app(front: Front, services: Services) -> None:
    request_id = new_id("client")
    with client(front.url) as http:
        response = http.get("/version", headers={"X-Request-ID": request_id})
    assert response.status_code == 200
    assert assert_front_headers(response) == request_id
    assert wait_logged(services.api, request_id)["path"] == "/version"
    assert wait_access_record(front.nginx, request_id)["path"] == "/version"


@pytest.mark.parametrize("given", [None, "bad id with spaces", "x" * 129])
def test_request_id_is_generated_by_nginx_when_absent_or_invalid(
    front: Front, services: Services, given: str | None
) -> None:
    headers = {} if given is None else {"X-Request-ID": given}
    with client(front.url) as http:
        response = http.get("/version", headers=headers)
    request_id = assert_front_headers(response)
    assert HEX_ID.fullmatch(request_id)
    # The same id in nginx's log and the api's: nginx made it and sent it upstream.
    wait_access_record(front.nginx, request_id)
    wait_logged(services.api, request_id)


def test_body_over_the_limit_is_413(front: Front, services: Services) -> None:
    too_big, fits, marker = new_id("too-big"), new_id("fits"), new_id("marker")
    with client(front.url) as http:
        rejected = http.post(
            "/api/health", content=b"x" * (1024 * 1024 + 1), headers={"X-Request-ID": too_big}
        )
        accepted = http.post("/api/health", content=b"x" * (512 * 1024), headers={"X-Request-ID": fits})
        http.get("/version", headers={"X-Request-ID": marker})
    assert rejected.status_code == 413
    assert assert_front_headers(rejected) == too_big
    # Under the limit the body reaches the api (which only allows GET there).
    assert accepted.status_code == 405
    assert assert_front_headers(accepted) == fits
    wait_logged(services.api, fits)
    wait_logged(services.api, marker)
    assert too_big not in services.api.request_ids()


def test_json_is_gzipped_when_the_client_accepts_it(front: Front) -> None:
    with client(front.url) as http:
        gzipped = http.get("/api/openapi.json", headers={"Accept-Encoding": "gzip"})
        plain = http.get("/api/openapi.json", headers={"Accept-Encoding": "identity"})
        # Behind another proxy (a request with Via): still compressed (gzip_proxied any).
        via = http.get("/api/openapi.json", headers={"Accept-Encoding": "gzip", "Via": "1.1 lb"})
    assert gzipped.status_code == 200
    assert gzipped.headers["content-encoding"] == "gzip"
    assert "accept-encoding" in gzipped.headers["vary"].lower()
    assert gzipped.num_bytes_downloaded < len(gzipped.content)
    assert gzipped.json() == plain.json()
    assert "content-encoding" not in plain.headers
    assert via.headers["content-encoding"] == "gzip"
    assert_front_headers(gzipped)


def test_access_log_is_json_with_request_id_status_timing_and_upstream(front: Front) -> None:
    request_id = new_id("log")
    with client(front.url) as http:
        http.get("/api/health", params={"token": "secret-in-query"}, headers={"X-Request-ID": request_id})
    record = wait_access_record(front.nginx, request_id)
    assert record["status"] == 200
    assert isinstance(record["request_time"], float | int)
    assert record["upstream"].startswith("127.0.0.1:")
    assert record["path"] == "/api/health"
    assert not [line for line in front.nginx.access_log.snapshot() if "secret-in-query" in line]


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
