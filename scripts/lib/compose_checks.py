#!/usr/bin/env python3
"""Parsing and verdicts for scripts/validate_production.sh and scripts/wait_healthy.sh (stdlib only).

The shell scripts collect raw outputs (``docker compose ps --all --format json``, ``docker compose config
--format json``, ``docker compose logs <service>``, the ``/readyz`` answer) into files and call one
subcommand per group of checks. Each check prints one row ``RESULT<TAB>CHECK<TAB>DETAIL`` with RESULT in
PASS / WARN / FAIL; the shell script prints the table and decides the exit status.

Subcommands:
  ps-rows PS_FILE SERVICES_OUT        no backend service, migration, required services, other containers;
                                      writes the distinct service names of the ps output to SERVICES_OUT
  health PS_FILE                      exit 0 when every long-running container is up and healthy, else
                                      print "service: reason" lines and exit 1 (used while deploying)
  config-rows CONFIG_FILE             worker dns config, log level, app env
  logs-rows LOG_DIR                   log window, dns errors in logs, log verbosity, fake errors in logs,
                                      error lines (LOG_DIR holds <service>.log, and <service>.err when
                                      reading that service's logs failed)
  readyz-row URL CODE BODY CURL_RC ERR
                                      readyz via nginx

Runs on any python3 >= 3.8 (production hosts), so no newer syntax or library calls at runtime. The
checks live in this module (ps, config, readyz), log_checks.py (logs) and check_rows.py (shared).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from check_rows import (
    APP_SERVICES,
    FAIL,
    FORBIDDEN,
    MULTI_WORKERS,
    ONE_SHOT,
    PASS,
    REQUIRED_SERVICES,
    WARN,
    row,
    shorten,
)
from log_checks import cmd_logs_rows

if TYPE_CHECKING:  # names used in annotations only, which are never evaluated (python3 >= 3.8 works)
    Container = dict[str, Any]

# ---------------------------------------------------------------------------------------------------- ps


def parse_ps(text: str) -> list[Container]:
    """`docker compose ps --format json`: a JSON array (older compose) or one object a line (newer)."""
    text = text.strip()
    if not text:
        return []
    try:
        data = json.loads(text)
    except ValueError:
        data = [json.loads(line) for line in text.splitlines() if line.strip()]
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not all(isinstance(c, dict) for c in data):
        raise ValueError("unexpected ps output: not a list of objects")
    return data


def load_ps(path: str) -> list[Container]:
    return parse_ps(Path(path).read_text(encoding="utf-8"))


def service_of(c: Container) -> str:
    return str(c.get("Service") or "")


def name_of(c: Container) -> str:
    return str(c.get("Name") or c.get("Names") or c.get("ID") or service_of(c))


def state_of(c: Container) -> str:
    return str(c.get("State") or "").lower()


def health_of(c: Container) -> str:
    return str(c.get("Health") or "").lower()


def exit_code_of(c: Container) -> int:
    try:
        return int(c.get("ExitCode") or 0)
    except (TypeError, ValueError):
        return 0


def container_verdict(c: Container) -> tuple[str, str]:
    """PASS when running and healthy, WARN when running without a healthcheck, FAIL otherwise."""
    state, health = state_of(c), health_of(c)
    if state != "running":
        suffix = f" ({exit_code_of(c)})" if state == "exited" else ""
        return FAIL, f"{name_of(c)} {state or 'unknown state'}{suffix}"
    if health == "healthy":
        return PASS, f"{name_of(c)} healthy"
    if not health:
        return WARN, f"{name_of(c)} running, no healthcheck"
    return FAIL, f"{name_of(c)} {health}"


def worst_of(verdicts: Iterable[str]) -> str:
    seen = set(verdicts)
    return FAIL if FAIL in seen else WARN if WARN in seen else PASS


def group_verdict(containers: list[Container]) -> tuple[str, list[str]]:
    """Worst verdict of a service's containers (FAIL when there are none) and their descriptions."""
    if not containers:
        return FAIL, []
    verdicts = [container_verdict(c) for c in containers]
    return worst_of(v for v, _ in verdicts), [d for _, d in verdicts]


def by_service(containers: Iterable[Container]) -> dict[str, list[Container]]:
    groups: dict[str, list[Container]] = {}
    for c in containers:
        groups.setdefault(service_of(c), []).append(c)
    return groups


def describe(service: str, containers: list[Container]) -> str:
    verdict, details = group_verdict(containers)
    if not containers:
        return f"{service}: no container"
    if verdict == PASS:
        n = len(containers)
        return f"{service}: {n} container{'s' if n > 1 else ''} running, healthy"
    return f"{service}: " + ", ".join(details)


def worker_rows(groups: dict[str, list[Container]]) -> tuple[str, str, list[str]]:
    """Verdict and detail for the worker requirement, and the services that verdict accounts for.

    Passes when ``worker`` is up and healthy, or when all of worker-high/default/low are (multi-worker
    deployments may scale ``worker`` to 0). Containers of the group that was not used are judged under
    "other containers".
    """
    single = groups.get("worker", [])
    single_verdict, _ = group_verdict(single)
    trio_present = any(groups.get(s) for s in MULTI_WORKERS)
    trio_verdict = worst_of(group_verdict(groups.get(s, []))[0] for s in MULTI_WORKERS)
    trio_text = "multi-worker: " + "; ".join(describe(s, groups.get(s, [])) for s in MULTI_WORKERS)
    if single and single_verdict != FAIL:
        return single_verdict, describe("worker", single), ["worker"]
    if trio_verdict != FAIL:
        note = "" if single else " (worker scaled to 0)"
        return trio_verdict, trio_text + note, list(MULTI_WORKERS)
    if single and not trio_present:
        return FAIL, describe("worker", single), ["worker", *MULTI_WORKERS]
    if trio_present and not single:
        return FAIL, trio_text, ["worker", *MULTI_WORKERS]
    detail = describe("worker", single) + (
        "; " + trio_text if trio_present else " (nor worker-high/default/low)"
    )
    return FAIL, detail, ["worker", *MULTI_WORKERS]


def cmd_ps_rows(path: str, services_out: str) -> int:
    containers = load_ps(path)
    groups = by_service(containers)
    Path(services_out).write_text("".join(f"{s}\n" for s in groups if s), encoding="utf-8")

    forbidden = [c for c in containers if service_of(c) in FORBIDDEN]
    running_forbidden = [name_of(c) for c in forbidden if state_of(c) in ("running", "restarting", "paused")]
    if running_forbidden:
        row(FAIL, "no backend service", "legacy backend running: " + ", ".join(running_forbidden))
    elif forbidden:
        row(
            WARN,
            "no backend service",
            "stopped legacy backend container left over: "
            + ", ".join(name_of(c) for c in forbidden)
            + " (remove it: scripts/dcprod.sh up -d --remove-orphans)",
        )
    else:
        row(PASS, "no backend service", "no backend container")

    migrate = [c for s in ONE_SHOT for c in groups.get(s, [])]
    failed = [c for c in migrate if state_of(c) in ("exited", "dead") and exit_code_of(c) != 0]
    if failed:
        row(
            FAIL,
            "migration",
            "migration failed: "
            + ", ".join(f"{name_of(c)} exited with {exit_code_of(c)}" for c in failed)
            + " (scripts/dcprod.sh logs migrate)",
        )
    elif any(state_of(c) == "restarting" for c in migrate):
        row(FAIL, "migration", "migration failed: migrate is restarting")
    elif any(state_of(c) in ("running", "created") for c in migrate):
        row(WARN, "migration", "migrate is still running")
    elif migrate:
        row(PASS, "migration", "migrate exited 0")
    else:
        row(PASS, "migration", "no migrate container (run with --rm)")

    accounted = set(ONE_SHOT) | set(FORBIDDEN)
    for service in REQUIRED_SERVICES:
        if service == "worker":
            verdict, detail, used = worker_rows(groups)
            accounted.update(used)
            row(verdict, "service worker", detail)
            continue
        accounted.add(service)
        verdict, _ = group_verdict(groups.get(service, []))
        row(verdict, f"service {service}", describe(service, groups.get(service, [])))

    others = [c for c in containers if service_of(c) not in accounted]
    if not others:
        row(PASS, "other containers", "none")
    else:
        verdicts = [container_verdict(c) for c in others]
        row(worst_of(v for v, _ in verdicts), "other containers", ", ".join(d for _, d in verdicts))
    return 0


def cmd_health(path: str) -> int:
    """Used while deploying: every required service present, every long-running container healthy."""
    containers = load_ps(path)
    groups = by_service(containers)
    problems: list[str] = []
    for c in containers:
        if service_of(c) in FORBIDDEN:
            continue  # validate_production.sh reports it; it must not hold the deployment
        if service_of(c) in ONE_SHOT:
            if state_of(c) in ("exited", "dead") and exit_code_of(c) != 0:
                problems.append(f"{service_of(c)}: {name_of(c)} exited with {exit_code_of(c)}")
            continue
        verdict, detail = container_verdict(c)
        if verdict == FAIL:
            problems.append(f"{service_of(c)}: {detail}")
    for service in REQUIRED_SERVICES:
        if service == "worker":
            if not groups.get("worker") and not all(groups.get(s) for s in MULTI_WORKERS):
                problems.append("worker: no container (nor worker-high/default/low)")
        elif not groups.get(service):
            problems.append(f"{service}: no container")
    for line in problems:
        print(line)
    return 1 if problems else 0


# ------------------------------------------------------------------------------------------------ config


def as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value if str(v).strip()]
    return [str(value)] if str(value).strip() else []


def environment_of(service: dict[str, Any]) -> dict[str, str | None]:
    env = service.get("environment") or {}
    if isinstance(env, dict):
        return {str(k): None if v is None else str(v) for k, v in env.items()}
    result: dict[str, str | None] = {}
    for item in as_list(env):
        key, sep, value = item.partition("=")
        result[key] = value if sep else None
    return result


def cmd_config_rows(path: str) -> int:
    config = json.loads(Path(path).read_text(encoding="utf-8"))
    services: dict[str, dict[str, Any]] = (config or {}).get("services") or {}

    workers = [s for s in ("worker", *MULTI_WORKERS) if s in services]
    if not workers:
        row(FAIL, "worker dns config", "no worker service in the effective config")
    else:
        missing = [s for s in workers if not as_list(services[s].get("dns"))]
        if missing:
            row(FAIL, "worker dns config", "no dns servers in the effective config of: " + ", ".join(missing))
        else:
            parts = []
            for s in workers:
                svc = services[s]
                part = f"{s}: dns {','.join(as_list(svc.get('dns')))}"
                if as_list(svc.get("dns_opt")):
                    part += f" opt {','.join(as_list(svc.get('dns_opt')))}"
                if as_list(svc.get("dns_search")):
                    part += f" search {','.join(as_list(svc.get('dns_search')))}"
                parts.append(part)
            row(PASS, "worker dns config", "; ".join(parts))

    apps = [s for s in APP_SERVICES if s in services]
    if not apps:
        row(FAIL, "log level", "no application service in the effective config")
        row(FAIL, "app env", "no application service in the effective config")
        return 0
    levels = {s: environment_of(services[s]).get("LOG_LEVEL") for s in apps}
    wrong = {s: v for s, v in levels.items() if v is not None and v.strip().upper() != "INFO"}
    unset = [s for s, v in levels.items() if v is None]
    if wrong:
        row(
            FAIL,
            "log level",
            "LOG_LEVEL must be INFO in production: " + ", ".join(f"{s}={v}" for s, v in wrong.items()),
        )
    elif unset:
        row(WARN, "log level", "LOG_LEVEL not set (code default INFO) for: " + ", ".join(unset))
    else:
        row(PASS, "log level", f"LOG_LEVEL=INFO on {len(apps)} services")

    envs = {s: environment_of(services[s]).get("APP_ENV") for s in apps}
    not_prod = {s: v for s, v in envs.items() if (v or "").strip().lower() != "production"}
    if not_prod:
        row(
            FAIL,
            "app env",
            "APP_ENV must be production: "
            + ", ".join(f"{s}={v if v is not None else '(unset: development)'}" for s, v in not_prod.items()),
        )
    else:
        row(PASS, "app env", f"APP_ENV=production on {len(apps)} services")
    return 0


# ------------------------------------------------------------------------------------------------ readyz


def cmd_readyz_row(url: str, code: str, body_path: str, curl_rc: str, err_path: str) -> int:
    body = Path(body_path).read_text(encoding="utf-8", errors="replace") if Path(body_path).exists() else ""
    err = Path(err_path).read_text(encoding="utf-8", errors="replace") if Path(err_path).exists() else ""
    if code in ("", "000") or curl_rc not in ("0", ""):
        reason = shorten(err, 100) or f"curl exit {curl_rc}"
        row(FAIL, "readyz via nginx", f"{url} unreachable: {reason}")
        return 0
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    status = data.get("status") if isinstance(data, dict) else None
    checks = data.get("checks") if isinstance(data, dict) else None
    checks = checks if isinstance(checks, dict) else {}
    if code == "200" and status == "ready":
        parts = [
            f"{name} {check.get('latency_ms')} ms"
            for name, check in checks.items()
            if isinstance(check, dict) and check.get("latency_ms") is not None
        ]
        row(PASS, "readyz via nginx", "HTTP 200, ready" + (f" ({', '.join(parts)})" if parts else ""))
        return 0
    failing = [
        f"{name}: {check.get('error')}"
        for name, check in checks.items()
        if isinstance(check, dict) and not check.get("ok", True)
    ]
    what = (
        "; ".join(failing) if failing else (f"status={status}" if status else shorten(body, 80) or "no body")
    )
    row(FAIL, "readyz via nginx", f"{url} answered HTTP {code}: {what}")
    return 0


COMMANDS: dict[str, tuple[Callable[..., int], int]] = {
    "ps-rows": (cmd_ps_rows, 2),
    "health": (cmd_health, 1),
    "config-rows": (cmd_config_rows, 1),
    "logs-rows": (cmd_logs_rows, 1),
    "readyz-row": (cmd_readyz_row, 5),
}


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[1] not in COMMANDS:
        print(__doc__, file=sys.stderr)
        return 2
    func, nargs = COMMANDS[argv[1]]
    args = argv[2:]
    if len(args) != nargs:
        print(f"{argv[1]} takes {nargs} argument(s)", file=sys.stderr)
        return 2
    try:
        return int(func(*args))
    except (OSError, ValueError) as exc:
        print(f"compose_checks {argv[1]}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main(sys.argv))
