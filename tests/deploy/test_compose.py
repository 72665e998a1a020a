"""Compose files, parsed by a real compose implementation, checked against the deploy invariants."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.deploy.compose_support import BASE, PROD, effective_config, production_env_file, run_config

PYTHON_SERVICES = {"migrate", "prosaas-api", "prosaas-calls", "worker", "scheduler"}
MULTI_WORKERS = {"worker-high": "high", "worker-default": "default", "worker-low": "low"}
LONG_RUNNING = {"prosaas-api", "prosaas-calls", "worker", "scheduler", "redis", "nginx", *MULTI_WORKERS}
ALWAYS_ON = {"migrate", "prosaas-api", "prosaas-calls", "worker", "scheduler", "redis", "nginx"}
DNS_BLOCK = {
    "dns": ["1.1.1.1", "8.8.8.8"],
    "dns_search": ["."],
    "dns_opt": ["ndots:0", "timeout:2", "attempts:2"],
}
TMP = "/" + "tmp"  # the tmpfs a read-only container writes to
NGINX_CAPS = {"CHOWN", "SETGID", "SETUID", "NET_BIND_SERVICE"}


@pytest.fixture(scope="module")
def prod(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    env_file = production_env_file(tmp_path_factory.mktemp("prod"))
    return effective_config([BASE, PROD], env_file)["services"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def base() -> dict[str, Any]:
    return effective_config([BASE])["services"]  # type: ignore[no-any-return]


def test_services_and_profiles(prod: dict[str, Any]) -> None:
    assert "backend" not in prod
    unprofiled = {name for name, svc in prod.items() if not svc.get("profiles")}
    assert unprofiled == ALWAYS_ON
    multi = {name for name, svc in prod.items() if "multi-worker" in svc.get("profiles", [])}
    assert multi == set(MULTI_WORKERS)
    assert prod["postgres"]["profiles"] == ["local-db"], "no database runs in production by default"


def test_no_container_names_so_services_scale(prod: dict[str, Any]) -> None:
    assert [name for name, svc in prod.items() if "container_name" in svc] == []


def test_every_long_running_service_has_a_real_healthcheck(prod: dict[str, Any]) -> None:
    expected = {
        "prosaas-api": "http://127.0.0.1:5000/readyz",
        "prosaas-calls": "http://127.0.0.1:5050/readyz",
        "worker": "prosaas_worker health",
        "scheduler": "prosaas_scheduler health",
        "redis": "redis-cli ping",
        "nginx": "/health",
        **{name: "prosaas_worker health" for name in MULTI_WORKERS},
    }
    for name in LONG_RUNNING:
        test = prod[name]["healthcheck"]["test"]
        assert test[0] == "CMD", name
        assert expected[name] in " ".join(test[1:]), name


def test_start_order_uses_health_conditions(prod: dict[str, Any]) -> None:
    for name in {"prosaas-api", "prosaas-calls", "worker", "scheduler", *MULTI_WORKERS}:
        depends = prod[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["redis"]["condition"] == "service_healthy", name
    nginx = prod["nginx"]["depends_on"]
    assert {k: v["condition"] for k, v in nginx.items()} == {
        "prosaas-api": "service_healthy",
        "prosaas-calls": "service_healthy",
    }
    assert prod["migrate"]["restart"] == "no"


def test_python_services_carry_the_dns_block(prod: dict[str, Any]) -> None:
    for name in PYTHON_SERVICES | set(MULTI_WORKERS):
        assert {key: prod[name].get(key) for key in DNS_BLOCK} == DNS_BLOCK, name


def test_production_logs_json_at_info(prod: dict[str, Any]) -> None:
    for name in PYTHON_SERVICES | set(MULTI_WORKERS):
        env = prod[name]["environment"]
        assert (env["APP_ENV"], env["LOG_LEVEL"], env["LOG_FORMAT"]) == ("production", "INFO", "json"), name


def test_multi_worker_profile_splits_the_queues(prod: dict[str, Any]) -> None:
    assert prod["worker"]["environment"]["WORKER_QUEUES"] == "high,default,low"
    for name, queue in MULTI_WORKERS.items():
        assert prod[name]["environment"]["WORKER_QUEUES"] == queue


def test_queue_redis_never_evicts_and_persists(prod: dict[str, Any]) -> None:
    redis = prod["redis"]
    command = redis["command"]
    flags = dict(zip(command[1::2], command[2::2], strict=True))
    assert flags["--maxmemory-policy"] == "noeviction"
    assert flags["--appendonly"] == "yes"
    assert flags["--maxmemory"]
    assert any(str(v).endswith(":/data:rw") or "/data" in str(v) for v in redis["volumes"])
    assert redis["deploy"]["resources"]["limits"]["memory"]


def test_production_hardening(prod: dict[str, Any]) -> None:
    for name in ALWAYS_ON | set(MULTI_WORKERS):
        svc = prod[name]
        assert svc["read_only"] is True, name
        assert svc["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in svc["security_opt"], name
        assert svc["ulimits"]["nofile"]["soft"] >= 65536, name
        assert svc["restart"] in ("always", "no"), name
        assert svc["deploy"]["resources"]["limits"]["memory"], name
        assert any(str(t).split(":")[0] == TMP for t in svc["tmpfs"]), name
    for name in PYTHON_SERVICES | set(MULTI_WORKERS):
        assert prod[name]["user"] == "10001:10001", name
    assert prod["redis"]["user"] == "redis"
    assert set(prod["nginx"]["cap_add"]) == NGINX_CAPS
    assert not any("cap_add" in prod[name] for name in ALWAYS_ON - {"nginx"})


def test_only_nginx_publishes_ports(prod: dict[str, Any]) -> None:
    published = {name for name, svc in prod.items() if svc.get("ports")}
    assert published == {"nginx"}
    targets = sorted(
        int(p["target"]) if isinstance(p, dict) else int(str(p).split(":")[-1])
        for p in prod["nginx"]["ports"]
    )
    assert targets == [80, 443]


def test_external_network_name_is_configurable(tmp_path: Path) -> None:
    env_file = production_env_file(tmp_path, PROSAAS_NETWORK="acme-net")
    networks = effective_config([BASE, PROD], env_file)["networks"]
    assert networks["prosaas"]["external"] is True
    assert networks["prosaas"]["name"] == "acme-net"


@pytest.mark.parametrize("missing", ["DATABASE_URL", "INTERNAL_SECRET", "AUTH_SECRET", "SMTP_URL", "APP_URL"])
def test_production_refuses_to_render_without_required_settings(tmp_path: Path, missing: str) -> None:
    env_file = production_env_file(tmp_path, **{missing: None})
    done = run_config([BASE, PROD], env_file)
    assert done.returncode != 0
    assert f"set {missing}" in done.stderr


def test_base_file_alone_is_a_working_development_stack(base: dict[str, Any]) -> None:
    assert base["prosaas-api"]["environment"]["APP_ENV"] == "development"
    assert base["postgres"]["profiles"] == ["local-db"]
    assert base["nginx"]["ports"]
    assert "read_only" not in base["prosaas-api"]
    assert any(str(t).startswith("/etc/nginx/conf.d") for t in base["nginx"]["tmpfs"]), "hide default.conf"
