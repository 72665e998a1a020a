"""The api service as devops run it: `python -m prosaas_api` on a port, probed over real HTTP."""

from __future__ import annotations

import json
import signal

import httpx

from tests.support import free_port, service_env, start_process, stop_process, wait_for_http


def test_api_process_serves_health_and_readiness(database_url: str, redis_url: str) -> None:
    port = free_port()
    env = service_env({"DATABASE_URL": database_url, "REDIS_URL": redis_url, "API_PORT": str(port)})
    proc = start_process(["-m", "prosaas_api"], env)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/api/health")
        assert httpx.get(f"http://127.0.0.1:{port}/api/health").json()["service"] == "api"
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz")
        assert ready.status_code == 200, ready.text
        httpx.get(f"http://127.0.0.1:{port}/version", headers={"X-Request-ID": "from-test"})
    finally:
        output = stop_process(proc)
    # uvicorn re-raises SIGTERM after its graceful shutdown, so the status is 0 or "killed by SIGTERM".
    assert proc.returncode in (0, -signal.SIGTERM), output
    events = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    names = [e["event"] for e in events]
    assert names[0] == "service.started"
    assert "service.stopped" in names
    assert [e["path"] for e in events if e["event"] == "http.request"] == ["/version"]
    assert not [e for e in events if e["level"] in ("error", "critical")], output
    assert all(line.startswith("{") for line in output.splitlines() if line.strip()), output
