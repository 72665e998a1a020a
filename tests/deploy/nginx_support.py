"""Run the production nginx configuration for real, on loopback, in front of locally started services.

The templates are rendered the way the nginx image's entrypoint renders them (envsubst with a list of
defined names: ``$NAME`` and ``${NAME}`` of those names only), into a temporary prefix that mirrors
``/etc/nginx``: ``nginx.conf``, ``mime.types``, ``snippets/`` and ``conf.d/prosaas.conf``. Includes in
the configuration are relative to that prefix, so the only edits to ``nginx.conf`` are the absolute
paths nginx writes to (pid, temp directories) and the ``user`` directive; see :func:`nginx_conf_for_tests`.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import signal
import socket
import socketserver
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from tests.support import ROOT, start_process

NGINX_DIR = ROOT / "deploy" / "nginx"
TEMPLATES = {
    "http": NGINX_DIR / "templates" / "prosaas.http.conf.template",
    "ssl": NGINX_DIR / "templates" / "prosaas.ssl.conf.template",
}
NGINX_BINARY = Path("/usr/sbin/nginx")
SYSTEM_MIME_TYPES = Path("/etc/nginx/mime.types")

# The documented template variables (template headers and deploy/nginx/README.md). Nothing else may
# be substituted: compose sets exactly these.
TEMPLATE_VARIABLES = frozenset(
    {
        "API_UPSTREAM",
        "CALLS_UPSTREAM",
        "NGINX_RESOLVER",
        "SERVER_NAME",
        "NGINX_HTTP_PORT",
        "NGINX_HTTPS_PORT",
        "SSL_CERTIFICATE",
        "SSL_CERTIFICATE_KEY",
        "CLIENT_MAX_BODY_SIZE",
    }
)

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "strict-origin-when-cross-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}
HSTS = "max-age=31536000; includeSubDomains"

_BRACED = re.compile(r"\$\{([^}]*)\}")
# What envsubst would treat as a variable reference; nginx's own variables are lower case.
_UPPER_BARE = re.compile(r"\$([A-Z_][A-Z0-9_]*)")


def placeholders(text: str) -> set[str]:
    """Every name envsubst could substitute in ``text``: ``${ANY}`` and upper-case ``$NAME``."""
    return set(_BRACED.findall(text)) | set(_UPPER_BARE.findall(text))


def envsubst(text: str, values: Mapping[str, str]) -> str:
    """envsubst restricted to ``values``' names, like the image's entrypoint (other ``$x`` stay)."""
    names = "|".join(re.escape(name) for name in sorted(values, key=len, reverse=True))
    pattern = re.compile(rf"\$(?:\{{({names})\}}|({names})(?![A-Za-z0-9_]))")
    return pattern.sub(lambda m: values[m.group(1) or m.group(2)], text)


def render_template(kind: str, values: Mapping[str, str]) -> str:
    """The template ``kind`` (http or ssl) rendered with ``values``, which must match what it uses."""
    text = TEMPLATES[kind].read_text()
    used = placeholders(text)
    undocumented = used - TEMPLATE_VARIABLES
    assert not undocumented, f"{TEMPLATES[kind].name} uses undocumented variables {sorted(undocumented)}"
    assert set(values) == used, f"{kind}: values {sorted(values)} != variables used {sorted(used)}"
    rendered = envsubst(text, values)
    assert not placeholders(rendered), rendered
    return rendered


def _current_user() -> str:
    return pwd.getpwuid(os.geteuid()).pw_name


def _replace_value(value: str) -> Callable[[re.Match[str]], str]:
    return lambda match: f"{match.group(1)}{value};"


def nginx_conf_for_tests(prefix: Path) -> str:
    """``nginx.conf`` with its absolute write paths moved into ``prefix`` and ``user`` set to us.

    The production file puts the pid and temp directories under /tmp (a tmpfs in the container);
    three nginx instances in one test run need their own. ``user nginx`` names the image's user: as
    root the workers run as the current user instead (they must reach the 0700 temporary prefix); as
    another user nginx ignores the directive. Every edited line must exist exactly once.
    """
    text = (NGINX_DIR / "nginx.conf").read_text()
    tmp = "/tmp"  # noqa: S108 - the production paths this function moves out of /tmp
    writes_to_tmp = [line for line in text.splitlines() if tmp in line.split("#", 1)[0]]
    edits = [("user", "nginx", _current_user())]
    for directive in (
        "pid",
        "client_body_temp_path",
        "proxy_temp_path",
        "fastcgi_temp_path",
        "uwsgi_temp_path",
        "scgi_temp_path",
    ):
        match = re.search(rf"^\s*{directive}\s+(/tmp/\S+);$", text, flags=re.MULTILINE)
        assert match, f"nginx.conf: no `{directive} /tmp/...;` line"
        edits.append((directive, match.group(1), str(prefix / "tmp" / Path(match.group(1)).name)))
    for directive, old, new in edits:
        line = re.compile(rf"^(\s*{directive}\s+){re.escape(old)};$", flags=re.MULTILINE)
        text, count = line.subn(_replace_value(new), text)
        assert count == 1, f"nginx.conf: expected one `{directive} {old};` line, found {count}"
    assert len(writes_to_tmp) == len(edits) - 1, (
        f"nginx.conf: /tmp paths the tests do not move: {writes_to_tmp}"
    )
    return text


def write_prefix(prefix: Path, kind: str, values: Mapping[str, str]) -> Path:
    """A directory laid out like /etc/nginx with the rendered site; returns the nginx.conf path."""
    (prefix / "conf.d").mkdir(parents=True)
    (prefix / "tmp").mkdir()
    shutil.copytree(NGINX_DIR / "snippets", prefix / "snippets")
    shutil.copy(SYSTEM_MIME_TYPES, prefix / "mime.types")
    (prefix / "conf.d" / "prosaas.conf").write_text(render_template(kind, values))
    conf = prefix / "nginx.conf"
    conf.write_text(nginx_conf_for_tests(prefix))
    return conf


def require_nginx() -> Path:
    if not NGINX_BINARY.exists():
        raise AssertionError(
            f"{NGINX_BINARY} is missing: install Debian's nginx package (`apt-get install nginx`; "
            ".ci/run does). These tests run the real nginx and are never skipped."
        )
    return NGINX_BINARY


def poll(predicate: Callable[[], bool], what: str, timeout: float = 10.0, interval: float = 0.05) -> None:
    """Wait until ``predicate()`` is true; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout}s: {what}")
        time.sleep(interval)


def client(base_url: str, **kwargs: Any) -> httpx.Client:
    """An httpx client for loopback only: no proxies from the environment, no redirects followed."""
    return httpx.Client(base_url=base_url, trust_env=False, timeout=10.0, **kwargs)


class _Drain:
    """Reads a pipe line by line on a thread so the child never blocks on a full pipe."""

    def __init__(self, stream: Any) -> None:
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, args=(stream,), daemon=True)
        self._thread.start()

    def _run(self, stream: Any) -> None:
        for line in iter(stream.readline, ""):
            with self._lock:
                self.lines.append(line.rstrip("\n"))
        stream.close()

    def snapshot(self) -> list[str]:
        with self._lock:
            return list(self.lines)

    def join(self, timeout: float = 5.0) -> None:
        self._thread.join(timeout)


@dataclass
class Service:
    """A service started as ``python -m <module>`` whose JSON log lines are readable while it runs."""

    name: str
    port: int
    proc: subprocess.Popen[str]
    output: _Drain

    @classmethod
    def start(cls, name: str, module: str, port: int, env: Mapping[str, str]) -> Service:
        proc = start_process(["-m", module], env)
        assert proc.stdout is not None
        return cls(name, port, proc, _Drain(proc.stdout))

    def wait_ready(self, path: str, timeout: float = 30.0) -> None:
        url = f"http://127.0.0.1:{self.port}{path}"

        def answers() -> bool:
            assert self.proc.poll() is None, f"{self.name} exited:\n" + "\n".join(self.output.snapshot())
            try:
                httpx.get(url, timeout=1.0, trust_env=False)
            except httpx.TransportError:
                return False
            return True

        poll(answers, f"{self.name} answering {url}", timeout=timeout, interval=0.1)

    def events(self, event: str | None = None) -> list[dict[str, Any]]:
        records = [json.loads(line) for line in self.output.snapshot() if line.startswith("{")]
        return [r for r in records if event is None or r.get("event") == event]

    def request_ids(self) -> set[str]:
        return {str(r.get("request_id")) for r in self.events("http.request")}

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.output.join()
        return "\n".join(self.output.snapshot())


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may contain spaces, so split after the last ")".
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@dataclass
class Nginx:
    """A real nginx master (foreground) with its prefix, ports and captured stdout/stderr."""

    prefix: Path
    conf: Path
    proc: subprocess.Popen[str]
    access_log: _Drain
    error_log: _Drain
    workers: set[int] = field(default_factory=set)

    @classmethod
    def start(cls, prefix: Path, kind: str, values: Mapping[str, str], ports: list[int]) -> Nginx:
        nginx = require_nginx()
        conf = write_prefix(prefix, kind, values)
        base = [str(nginx), "-p", str(prefix), "-e", "stderr", "-c", str(conf)]
        checked = subprocess.run([*base, "-t"], capture_output=True, text=True, timeout=30, check=False)
        assert checked.returncode == 0, f"nginx -t failed:\n{checked.stderr}"
        proc = subprocess.Popen(
            [*base, "-g", "daemon off;"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        assert proc.stderr is not None
        server = cls(prefix, conf, proc, _Drain(proc.stdout), _Drain(proc.stderr))
        try:
            for port in ports:
                poll(partial(server._listening, port), f"nginx listening on 127.0.0.1:{port}")
            poll(lambda: bool(_children(proc.pid)), "nginx workers started")
        except BaseException:
            server.stop()
            raise
        server.workers = _children(proc.pid)
        return server

    def _listening(self, port: int) -> bool:
        assert self.proc.poll() is None, "nginx exited:\n" + "\n".join(self.error_log.snapshot())
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False

    def access_records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.access_log.snapshot() if line.startswith("{")]

    def stop(self) -> str:
        """Graceful stop (SIGQUIT, then SIGTERM); fails if the master or a worker outlives it."""
        workers = self.workers | _children(self.proc.pid)
        for sig in (signal.SIGQUIT, signal.SIGTERM, signal.SIGKILL):
            if self.proc.poll() is not None:
                break
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                continue
        left = {pid for pid in workers if _alive(pid)}
        deadline = time.monotonic() + 5
        while left and time.monotonic() < deadline:
            time.sleep(0.05)
            left = {pid for pid in left if _alive(pid)}
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        self.access_log.join()
        self.error_log.join()
        assert not left, f"nginx workers {sorted(left)} outlived their master"
        return "\n".join(self.error_log.snapshot())


class FakeDns:
    """A tiny authoritative DNS server on loopback (UDP): A records from ``records``, else NXDOMAIN.

    Every query is recorded, so a test can tell when nginx resolved a name (at start, or per request).
    """

    def __init__(self, records: Mapping[str, str]) -> None:
        self.records = dict(records)
        self.queries: list[str] = []
        dns = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                data, sock = self.request
                reply = dns.answer(data)
                if reply is not None:
                    sock.sendto(reply, self.client_address)

        self._server = socketserver.ThreadingUDPServer(("127.0.0.1", 0), Handler)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def answer(self, query: bytes) -> bytes | None:
        if len(query) < 12:
            return None
        ident, _flags, qdcount = struct.unpack(">HHH", query[:6])
        if qdcount != 1:
            return None
        labels, offset = [], 12
        while offset < len(query) and query[offset] != 0:
            length = query[offset]
            labels.append(query[offset + 1 : offset + 1 + length].decode("ascii", "replace"))
            offset += 1 + length
        end = offset + 5  # the zero byte, QTYPE, QCLASS
        if end > len(query):
            return None
        qtype = struct.unpack(">H", query[offset + 1 : offset + 3])[0]
        name = ".".join(labels).lower()
        self.queries.append(name)
        question = query[12:end]
        address = self.records.get(name)
        if address is None:
            return struct.pack(">HHHHHH", ident, 0x8183, 1, 0, 0, 0) + question  # NXDOMAIN
        if qtype != 1:
            return struct.pack(">HHHHHH", ident, 0x8180, 1, 0, 0, 0) + question  # no A: empty answer
        answer = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 1, 4) + socket.inet_aton(address)
        return struct.pack(">HHHHHH", ident, 0x8180, 1, 1, 0, 0) + question + answer

    @contextmanager
    def running(self) -> Iterator[FakeDns]:
        self._thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(5)


def assert_front_headers(response: httpx.Response, *, hsts: bool = False) -> str:
    """Security headers exactly once each, and exactly one X-Request-ID, which is returned."""
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get_list(name) == [value], (name, response.status_code, response.url)
    assert response.headers.get_list("strict-transport-security") == ([HSTS] if hsts else [])
    ids = response.headers.get_list("x-request-id")
    assert len(ids) == 1, (ids, response.status_code, response.url)
    return ids[0]


def generate_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 / localhost made with the openssl CLI."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return cert, key
