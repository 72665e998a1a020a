"""The production nginx configuration, live on loopback: the files, routing, request ids, limits.

Fixtures (the api and calls processes, the nginx instances) live in tests/deploy/nginx_fixtures.py.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from websockets.sync.client import connect

from prosaas_common.settings import DEV_INTERNAL_SECRET
from tests.deploy.nginx_fixtures import (
    HEX_ID,
    NGINX_HEALTH,
    Front,
    Services,
    new_id,
    wait_access_record,
    wait_logged,
)
from tests.deploy.nginx_support import (
    NGINX_DIR,
    TEMPLATE_VARIABLES,
    TEMPLATES,
    assert_front_headers,
    client,
    envsubst,
    generate_certificate,
    placeholders,
    render_template,
    require_nginx,
    write_prefix,
)

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
        # An endpoint that reads its body: one that answered without reading it would let uvicorn close
        # the connection while nginx still sends, a 502 by race rather than by configuration.
        accepted = http.post(
            "/api/auth/login",
            content=b"x" * (512 * 1024),
            headers={"X-Request-ID": fits, "Content-Type": "application/json"},
        )
        http.get("/version", headers={"X-Request-ID": marker})
    assert rejected.status_code == 413
    assert assert_front_headers(rejected) == too_big
    # Under the limit the body reaches the api, which reads it and refuses it as JSON.
    assert accepted.status_code == 422
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
