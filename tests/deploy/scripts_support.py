"""Run the runbook scripts (scripts/*.sh) against the fake ``docker`` and a real local /readyz server."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.support import ROOT

SCRIPTS = ROOT / "scripts"
FAKE_DIR = Path(__file__).resolve().parent / "fake_docker"
FAKE_DOCKER = FAKE_DIR / "docker"
SCENARIOS = FAKE_DIR / "scenarios"
PYTHON3 = "/usr/bin/python3"  # a plain interpreter starts in ~15 ms (the pyenv shim takes ~10x longer)
COMPOSE_GLOBALS = (
    "-p",
    "prosaas",
    "-f",
    "deploy/compose/docker-compose.yml",
    "-f",
    "deploy/compose/docker-compose.prod.yml",
)

# Variables of the scripts (and of the machine) that must not leak into a test run.
SCRUBBED_PREFIXES = ("DOCKER", "COMPOSE", "PROSAAS_", "VALIDATE_", "DEPLOY_", "FAKE_DOCKER", "NGINX_")
SCRUBBED = {
    "HTTP_PORT",
    "HTTPS_PORT",
    "http_proxy",
    "https_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
}


@dataclass
class Run:
    """One script run: its result and the fake docker's invocation log."""

    returncode: int
    stdout: str
    stderr: str
    invocations: list[dict[str, Any]]
    seconds: float = 0.0

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def table(self) -> list[tuple[str, str, str]]:
        """The validation table's rows in order: (check, result, detail)."""
        rows = []
        for line in self.stdout.splitlines():
            parts = [p.strip() for p in line.split(" | ", 2)]
            if len(parts) == 3 and parts[1] in ("PASS", "WARN", "FAIL"):
                rows.append((parts[0], parts[1], parts[2]))
        return rows

    def rows(self) -> dict[str, tuple[str, str]]:
        """The validation table as {check: (result, detail)}."""
        return {check: (result, detail) for check, result, detail in self.table()}

    def compose_calls(self) -> list[list[str]]:
        """Arguments after ``docker compose`` / ``docker-compose`` and the wrapper's globals."""
        calls = []
        for inv in self.invocations:
            args = list(inv["args"])
            if inv["prog"] == "docker":
                if args[:1] != ["compose"]:
                    continue
                args = args[1:]
            if args == ["version"]:
                continue
            calls.append(strip_globals(args))
        return calls

    def subcommands(self) -> list[str]:
        """The order of everything the fake saw: "network inspect", "build", "run", "up", "ps", ..."""
        names = []
        for inv in self.invocations:
            args = list(inv["args"])
            if inv["prog"] == "docker" and args[:1] == ["network"]:
                names.append(f"network {args[1]}")
                continue
            if inv["prog"] == "docker":
                args = args[1:]
            if args == ["version"]:
                continue
            rest = strip_globals(args)
            names.append(rest[0] if rest else "")
        return names


def strip_globals(args: list[str]) -> list[str]:
    """Drop -p/-f/--env-file/--profile (with values) from the front of compose arguments."""
    i = 0
    while i < len(args) and args[i] in ("-p", "-f", "--env-file", "--profile"):
        i += 2
    return args[i:]


@dataclass
class FakeDocker:
    """A bin directory with the fake ``docker``/``docker-compose`` first on PATH, and an env file."""

    root: Path
    bin: Path = field(init=False)
    env_file: Path = field(init=False)

    def __post_init__(self) -> None:
        self.bin = self.root / "bin"
        self.bin.mkdir(parents=True, exist_ok=True)
        for name in ("docker", "docker-compose"):
            (self.bin / name).symlink_to(FAKE_DOCKER)
        if Path(PYTHON3).exists():
            (self.bin / "python3").symlink_to(PYTHON3)
        self.env_file = self.root / "env.prod"
        self.env_file.write_text("NGINX_TEMPLATE=http\nHTTP_PORT=80\nLOG_LEVEL=INFO\n")
        self._count = 0

    def new_state(self) -> Path:
        """A fresh directory for the fake's state (ps poll counter, created networks) and its log."""
        self._count += 1
        state = self.root / f"state-{self._count}"
        state.mkdir()
        return state

    def environment(
        self, scenario: str, extra: Mapping[str, str] | None = None, state: Path | None = None
    ) -> tuple[dict[str, str], Path]:
        state = state or self.new_state()
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(SCRUBBED_PREFIXES) and k not in SCRUBBED
        }
        env.update(
            {
                "PATH": f"{self.bin}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
                "FAKE_DOCKER_LOG": str(state / "invocations.jsonl"),
                "FAKE_DOCKER_STATE": str(state),
                "FAKE_DOCKER_SCENARIO": str(SCENARIOS / scenario),
                "PROSAAS_ENV_FILE": str(self.env_file),
                "NO_PROXY": "127.0.0.1,localhost",
                "no_proxy": "127.0.0.1,localhost",
                "LC_ALL": "C",
            }
        )
        env.update(extra or {})
        return env, state

    def run(
        self,
        script: str,
        *args: str,
        scenario: str = "clean",
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        state: Path | None = None,
        timeout: float = 60.0,
    ) -> Run:
        """Run ``scripts/<script>``; pass ``state`` to share the fake's state (and log) between runs."""
        environment, state = self.environment(scenario, env, state)
        log = state / "invocations.jsonl"
        seen = len(log.read_text().splitlines()) if log.exists() else 0
        started = time.monotonic()
        proc = subprocess.run(
            [str(SCRIPTS / script), *args],
            env=environment,
            cwd=cwd or self.root,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        seconds = time.monotonic() - started
        lines = log.read_text().splitlines()[seen:] if log.exists() else []
        invocations = [json.loads(line) for line in lines]
        return Run(proc.returncode, proc.stdout, proc.stderr, invocations, seconds)


class _ReadyzHandler(BaseHTTPRequestHandler):
    server: ReadyzServer

    def do_GET(self) -> None:
        status, body, headers = self.server.answer
        self.server.paths.append(self.path)
        payload = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        return


class ReadyzServer(ThreadingHTTPServer):
    """What nginx would answer on /readyz, on 127.0.0.1 and a free port."""

    daemon_threads = True

    def __init__(self, status: int, body: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _ReadyzHandler)
        self.answer = (status, body, dict(headers or {}))
        self.paths: list[str] = []

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


READY_BODY = json.dumps(
    {
        "service": "api",
        "status": "ready",
        "checks": {
            "postgres": {"ok": True, "latency_ms": 1.8, "error": None},
            "redis": {"ok": True, "latency_ms": 0.4, "error": None},
        },
    }
)
NOT_READY_BODY = json.dumps(
    {
        "service": "api",
        "status": "not_ready",
        "checks": {
            "postgres": {
                "ok": False,
                "latency_ms": 0.9,
                "error": "ConnectionRefusedError: [Errno 111] Connect call failed",
            },
            "redis": {"ok": True, "latency_ms": 0.4, "error": None},
        },
    }
)


@contextmanager
def readyz_server(
    status: int = 200, body: str = READY_BODY, headers: Mapping[str, str] | None = None
) -> Iterator[ReadyzServer]:
    server = ReadyzServer(status, body, headers)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
