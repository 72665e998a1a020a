"""scripts/validate_production.sh against recorded compose outputs (fake ``docker``) and a real /readyz.

Every check passes on the ``clean`` scenario (a healthy production stack) and fails on the broken
variant made for it, with the FAIL row naming that check and no other check failing.
"""

from __future__ import annotations

import importlib.util
import json
import ssl
import sys
import threading
from pathlib import Path
from types import ModuleType

import pytest

from tests.deploy.nginx_support import generate_certificate
from tests.deploy.scripts_support import (
    COMPOSE_GLOBALS,
    NOT_READY_BODY,
    SCENARIOS,
    SCRIPTS,
    FakeDocker,
    ReadyzServer,
    Run,
    readyz_server,
)
from tests.support import ROOT, closed_port

CHECKS = [
    "no backend service",
    "migration",
    "service prosaas-api",
    "service prosaas-calls",
    "service worker",
    "service scheduler",
    "service redis",
    "service nginx",
    "other containers",
    "worker dns config",
    "log level",
    "app env",
    "log window",
    "dns errors in logs",
    "log verbosity",
    "fake errors in logs",
    "error lines",
    "readyz via nginx",
]
CLEAN_SERVICES = ["migrate", "nginx", "prosaas-api", "prosaas-calls", "redis", "scheduler", "worker"]


def validate(fake: FakeDocker, scenario: str, base_url: str | None, **env: str) -> Run:
    # DOCKER_COMPOSE skips the `docker compose version` probe (dcprod.sh's own tests cover it).
    extra = {"DOCKER_COMPOSE": "docker compose", **env}
    if base_url is not None:
        extra["VALIDATE_BASE_URL"] = base_url
    return fake.run("validate_production.sh", scenario=scenario, env=extra)


@pytest.fixture(scope="module")
def clean(fake: FakeDocker, ready: ReadyzServer) -> Run:
    return validate(fake, "clean", ready.url)


def failing(run: Run) -> dict[str, str]:
    return {check: detail for check, (result, detail) in run.rows().items() if result == "FAIL"}


# ------------------------------------------------------------------------------------------- clean stack


def test_clean_stack_passes_every_check(clean: Run) -> None:
    assert clean.returncode == 0, clean.output
    assert [check for check, _, _ in clean.table()] == CHECKS
    rows = clean.rows()
    assert {check: result for check, (result, _) in rows.items()} == dict.fromkeys(CHECKS, "PASS"), (
        clean.stdout
    )
    lines = clean.stdout.splitlines()
    assert [p.strip() for p in lines[0].split("|")] == ["CHECK", "RESULT", "DETAIL"]
    assert lines[-1] == f"summary: {len(CHECKS)} passed, 0 warnings, 0 failed"


def test_reads_compose_by_service_name_from_the_repo_root(clean: Run, fake: FakeDocker) -> None:
    # With the multi-worker profile on, whether or not the trio runs (ps and logs see what exists).
    calls = clean.compose_calls()
    assert ["ps", "--all", "--format", "json"] in calls
    assert ["config", "--format", "json"] in calls
    logs = [c for c in calls if c[0] == "logs"]
    # One call per service that ps lists, by service name (never a guessed container name).
    assert logs == [["logs", "--no-color", "--since", "10m", s] for s in CLEAN_SERVICES]
    for inv in clean.invocations:
        assert inv["cwd"] == str(ROOT)
        assert inv["args"][:8] == ["compose", *COMPOSE_GLOBALS, "--env-file"]
        assert inv["args"][8:11] == [str(fake.env_file), "--profile", "multi-worker"]


# --------------------------------------------------------------------------------- one broken variant each

FAIL_CASES = [
    ("backend_running", "no backend service", "legacy backend running: prosaas-backend-1"),
    ("migrate_failed", "migration", "migration failed: prosaas-migrate-1 exited with 1"),
    ("service_unhealthy", "service prosaas-calls", "prosaas-prosaas-calls-1 unhealthy"),
    ("service_exited", "service scheduler", "prosaas-scheduler-1 exited (1)"),
    ("service_missing", "service nginx", "nginx: no container"),
    ("scaled_worker_unhealthy", "service worker", "prosaas-worker-2 unhealthy"),
    ("dns_config_missing", "worker dns config", "no dns servers in the effective config of: worker"),
    ("log_level_debug", "log level", "worker=DEBUG"),
    ("app_env_development", "app env", "worker=development"),
    ("logs_unreadable", "log window", "could not read the logs of worker"),
    ("dns_errors", "dns errors in logs", "3 DNS error lines"),
    ("nginx_dns_error", "dns errors in logs", "could not be resolved"),
    ("debug_flood", "log verbosity", "worker 84/120 DEBUG (70% >= 50%)"),
    ("fake_error_websocket", "fake errors in logs", "[websocket-close]: WebSocket disconnected"),
    ("fake_error_plain_text", "fake errors in logs", "[websocket-close]: ERROR:prosaas_calls.media"),
    ("fake_error_stream", "fake errors in logs", "[stream-ended]"),
    ("fake_error_close_code", "fake errors in logs", "[normal-close-code]"),
    ("fake_error_close_field", "fake errors in logs", "[normal-close-code]"),
]


@pytest.mark.parametrize(("scenario", "check", "detail"), FAIL_CASES, ids=[c[0] for c in FAIL_CASES])
def test_check_fails_on_its_broken_variant(
    fake: FakeDocker, ready: ReadyzServer, clean: Run, scenario: str, check: str, detail: str
) -> None:
    assert clean.rows()[check][0] == "PASS"
    run = validate(fake, scenario, ready.url)
    assert run.returncode == 1, run.output
    failed = failing(run)
    assert list(failed) == [check], run.stdout
    assert detail in failed[check]
    assert run.stdout.splitlines()[-1].endswith(", 1 failed")


def test_multi_worker_with_one_worker_down_fails(fake: FakeDocker, ready: ReadyzServer) -> None:
    run = validate(fake, "multi_worker_one_down", ready.url)
    assert run.returncode == 1
    assert list(failing(run)) == ["service worker"]
    assert "prosaas-worker-low-1 restarting" in failing(run)["service worker"]


WARN_CASES = [
    ("backend_stopped", "no backend service", "stopped legacy backend container left over"),
    ("no_healthcheck", "service scheduler", "running, no healthcheck"),
    ("log_level_unset", "log level", "LOG_LEVEL not set (code default INFO)"),
    ("empty_logs", "log window", "no log lines in the last 10m"),
    ("dns_recovered", "dns errors in logs", "every target recovered since"),
    ("debug_some", "log verbosity", "worker 30/100 DEBUG (30% >= 20%)"),
    ("error_lines", "error lines", "1 ERROR line in the last 10m: worker 1"),
]


@pytest.mark.parametrize(("scenario", "check", "detail"), WARN_CASES, ids=[c[0] for c in WARN_CASES])
def test_soft_issues_warn_without_failing(
    fake: FakeDocker, ready: ReadyzServer, scenario: str, check: str, detail: str
) -> None:
    run = validate(fake, scenario, ready.url)
    assert run.returncode == 0, run.output
    warned = {c: d for c, (r, d) in run.rows().items() if r == "WARN"}
    assert list(warned) == [check], run.stdout
    assert detail in warned[check]
    assert not failing(run)
    assert run.stdout.splitlines()[-1] == f"summary: {len(CHECKS) - 1} passed, 1 warnings, 0 failed"


# ---------------------------------------------------------------------------------- healthy variations


@pytest.mark.parametrize(
    "scenario",
    ["ps_array", "scaled_worker", "config_env_list", "debug_few_lines"],
)
def test_healthy_variants_pass(fake: FakeDocker, ready: ReadyzServer, scenario: str) -> None:
    run = validate(fake, scenario, ready.url)
    assert run.returncode == 0, run.output
    assert {r for r, _ in run.rows().values()} == {"PASS"}, run.stdout


def test_ps_array_and_ndjson_read_the_same(clean: Run, fake: FakeDocker, ready: ReadyzServer) -> None:
    assert (SCENARIOS / "ps_array" / "ps.json").read_text().startswith("[")
    assert (SCENARIOS / "clean" / "ps.json").read_text().startswith("{")
    run = validate(fake, "ps_array", ready.url)
    assert run.rows() == clean.rows()


def test_scaled_worker_counts_every_container(fake: FakeDocker, ready: ReadyzServer) -> None:
    run = validate(fake, "scaled_worker", ready.url)
    assert run.rows()["service worker"] == ("PASS", "worker: 3 containers running, healthy")


def test_multi_worker_stack_passes(fake: FakeDocker, ready: ReadyzServer) -> None:
    run = validate(fake, "multi_worker", ready.url, VALIDATE_LOG_WINDOW="30m")
    assert run.returncode == 0, run.output
    rows = run.rows()
    assert {r for r, _ in rows.values()} == {"PASS"}, run.stdout
    assert "worker-high: 1 container running, healthy" in rows["service worker"][1]
    assert "worker scaled to 0" in rows["service worker"][1]
    logs = [c[-1] for c in run.compose_calls() if c[0] == "logs"]
    assert {"worker-high", "worker-default", "worker-low"} <= set(logs)
    assert all(
        c[:4] == ["logs", "--no-color", "--since", "30m"] for c in run.compose_calls() if c[0] == "logs"
    )


# ------------------------------------------------------------------------------------------------ readyz


def test_readyz_503_fails(fake: FakeDocker) -> None:
    with readyz_server(503, NOT_READY_BODY) as server:
        run = validate(fake, "clean", server.url)
    assert run.returncode == 1
    assert list(failing(run)) == ["readyz via nginx"]
    detail = failing(run)["readyz via nginx"]
    assert "answered HTTP 503: postgres: ConnectionRefusedError" in detail
    assert server.paths == ["/readyz"]


def test_readyz_unreachable_fails(fake: FakeDocker) -> None:
    run = validate(fake, "clean", f"http://127.0.0.1:{closed_port()}")
    assert run.returncode == 1
    assert list(failing(run)) == ["readyz via nginx"]
    assert "unreachable" in failing(run)["readyz via nginx"]


def test_readyz_200_without_ready_status_fails(fake: FakeDocker) -> None:
    with readyz_server(200, json.dumps({"status": "starting"})) as server:
        run = validate(fake, "clean", server.url)
    assert list(failing(run)) == ["readyz via nginx"]
    assert "status=starting" in failing(run)["readyz via nginx"]


def test_readyz_redirect_fails_with_a_hint(fake: FakeDocker) -> None:
    with readyz_server(301, "", {"Location": "https://prosaas.example.com/readyz"}) as server:
        run = validate(fake, "clean", server.url)
    assert list(failing(run)) == ["readyz via nginx"]
    assert "redirected to https://prosaas.example.com/readyz" in failing(run)["readyz via nginx"]


def test_base_url_follows_the_env_file_http_port(fake: FakeDocker, tmp_path: Path) -> None:
    env_file = tmp_path / "env.prod"
    with readyz_server() as server:
        env_file.write_text(f"NGINX_TEMPLATE=http\nHTTP_PORT={server.port}\n")
        run = validate(fake, "clean", None, PROSAAS_ENV_FILE=str(env_file))
        assert run.returncode == 0, run.output
        assert server.paths == ["/readyz"]


def test_ssl_template_checks_https_with_an_untrusted_certificate(fake: FakeDocker, tmp_path: Path) -> None:
    cert, key = generate_certificate(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = ReadyzServer(200, NOT_READY_BODY.replace("not_ready", "ready"))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        env_file = tmp_path / "env.prod"
        env_file.write_text(f"NGINX_TEMPLATE=ssl\nHTTPS_PORT={server.port}\nHTTP_PORT=1\n")
        run = validate(fake, "clean", None, PROSAAS_ENV_FILE=str(env_file))
    finally:
        server.shutdown()
        server.server_close()
    assert run.rows()["readyz via nginx"][0] == "PASS", run.stdout
    assert server.paths == ["/readyz"]


# ------------------------------------------------------------------------------------ compose failures


def test_compose_ps_failure_fails_every_container_and_log_check(
    fake: FakeDocker, ready: ReadyzServer
) -> None:
    run = validate(fake, "ps_fails", ready.url)
    assert run.returncode == 1
    failed = failing(run)
    assert "Cannot connect to the Docker daemon" in failed["service prosaas-api"]
    assert "docker compose ps failed" in failed["log verbosity"]
    assert run.rows()["worker dns config"][0] == "PASS"


def test_compose_config_failure_fails_the_config_checks(fake: FakeDocker, ready: ReadyzServer) -> None:
    run = validate(fake, "config_fails", ready.url)
    assert run.returncode == 1
    assert list(failing(run)) == ["worker dns config", "log level", "app env"]
    assert "required variable DATABASE_URL is missing" in failing(run)["log level"]


def test_unparsable_ps_output_fails_the_rows_it_feeds_once(fake: FakeDocker, ready: ReadyzServer) -> None:
    run = validate(fake, "ps_garbage", ready.url)
    assert run.returncode == 1
    assert [check for check, _, _ in run.table()] == CHECKS  # each row once, none doubled
    rows = run.rows()
    assert rows["service nginx"][0] == "FAIL"
    assert "could not parse the output" in rows["service nginx"][1]
    assert rows["log verbosity"][0] == "FAIL"
    assert rows["worker dns config"][0] == "PASS"


def test_relative_env_file_is_the_callers(fake: FakeDocker, ready: ReadyzServer) -> None:
    run = validate(fake, "clean", ready.url, PROSAAS_ENV_FILE=fake.env_file.name)  # cwd: fake.root
    assert run.returncode == 0, run.output
    assert {inv["args"][8] for inv in run.invocations} == {str(fake.env_file)}


def test_usage(fake: FakeDocker) -> None:
    run = fake.run("validate_production.sh", "-h")
    assert run.returncode == 0
    assert "Usage: scripts/validate_production.sh" in run.stdout
    assert "fake errors in logs" in run.stdout
    assert run.invocations == []
    bad = fake.run("validate_production.sh", "--bogus")
    assert bad.returncode == 2


# ----------------------------------------------------------------------------------- the parser itself


def load_checks(name: str = "compose_checks") -> ModuleType:
    # Run as a script, compose_checks.py finds its sibling modules on sys.path[0]; loaded here, it needs
    # the folder added the same way.
    if str(SCRIPTS / "lib") not in sys.path:
        sys.path.insert(0, str(SCRIPTS / "lib"))
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / "lib" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ps_formats_parse_alike() -> None:
    checks = load_checks()
    objects = [
        {"Service": "redis", "State": "running", "Health": "healthy"},
        {"Service": "nginx", "State": "exited"},
    ]
    ndjson = "\n".join(json.dumps(o) for o in objects) + "\n"
    assert checks.parse_ps(ndjson) == checks.parse_ps(json.dumps(objects)) == objects
    assert checks.parse_ps(json.dumps(objects[0])) == objects[:1]
    assert checks.parse_ps("") == []


@pytest.mark.parametrize(
    ("line", "pattern"),
    [
        ('{"event": "WebSocket disconnected", "level": "error"}', "websocket-close"),
        ('{"event": "ws.closed", "level": "critical", "error": "ConnectionClosedOK"}', "websocket-close"),
        ('{"event": "media.done", "level": "error", "reason": "Stream ended"}', "stream-ended"),
        ('{"event": "provider.closed", "level": "error", "code": 1005}', "normal-close-code"),
        ('{"event": "provider.closed", "level": "error", "error": "1001 going away"}', "normal-close-code"),
        ('{"event": "WebSocket disconnected", "level": "info", "close_code": 1000}', None),
        ('{"event": "job.failed", "level": "error", "duration_ms": 1000.0}', None),
        ('{"event": "ws.error", "level": "error", "close_code": 1011}', None),
        ("calls-1  | ERROR: stream stopped by stop event", "stream-ended"),
    ],
)
def test_fake_error_patterns(line: str, pattern: str | None) -> None:
    checks = load_checks("log_checks")
    parsed = checks.parse_log_line(line)
    assert parsed is not None
    assert checks.fake_error_pattern(parsed) == pattern
