"""The log checks of validate_production.sh: DNS errors, verbosity, fake and real ERROR lines.

Reads ``<service>.log`` files written from ``docker compose logs <service>`` (stdlib only).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from check_rows import FAIL, PASS, WARN, env_float, plural, row, shorten

# `docker compose logs` prefixes each line with "<container-without-project>  | ".
LOG_PREFIX = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.-]*)\s*\| ?(.*)$")
TEXT_LEVEL = re.compile(r"\b(DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL|FATAL)\b")
NGINX_LEVEL = re.compile(r"\[(debug|info|notice|warn|error|crit|alert|emerg)\]")
ERROR_LEVELS = {"error", "critical", "crit", "alert", "emerg", "fatal"}

# DNS errors: our DNS failure event and the classic resolver messages (libc, asyncpg/psycopg, nginx).
DNS_EVENT = "dns.resolution_failed"
DNS_RECOVERED_EVENT = "dns.resolution_recovered"
DNS_MESSAGES = re.compile(
    r"could not translate host name|name or service not known|temporary failure in name resolution"
    r"|could not be resolved|host not found in upstream",
    re.IGNORECASE,
)

# "Fake" ERROR lines: an ERROR (or CRITICAL) line that reports a normal close. Patterns, case-insensitive:
#   websocket-close  the line mentions "websocket" and "disconnect" or "closed", or ConnectionClosedOK
#   stream-ended     "stream ended", "stream stopped" or "stop event"
#   normal-close-code  a normal WebSocket close code (1000 OK, 1001 going away, 1005 no status) given as a
#                    close/code/status field ("close_code": 1000, code=1001) or as "1000 (OK)",
#                    "1001 going away", "1005 (no status…)"
FAKE_ERROR_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "websocket-close",
        re.compile(r"websocket.*(disconnect|closed)|(disconnect|closed).*websocket|connectionclosedok", re.I),
    ),
    ("stream-ended", re.compile(r"stream ended|stream stopped|stop event", re.I)),
    (
        "normal-close-code",
        re.compile(
            r"\b(close|code|status)\w*[\"']?\s*[:=]?\s*[\"']?(1000|1001|1005)\b"
            r"|\b(1000|1001|1005)\s*\(?(ok|going away|no status)",
            re.I,
        ),
    ),
)


# -------------------------------------------------------------------------------------------------- logs


class LogLine:
    __slots__ = ("data", "level", "text")

    def __init__(self, text: str, data: dict[str, Any] | None, level: str) -> None:
        self.text = text
        self.data = data
        self.level = level


def parse_log_line(raw: str) -> LogLine | None:
    raw = raw.rstrip("\r\n")
    match = LOG_PREFIX.match(raw)
    text = match.group(2) if match else raw
    if not text.strip():
        return None
    data: dict[str, Any] | None = None
    if text.lstrip().startswith("{"):
        try:
            loaded = json.loads(text)
        except ValueError:
            loaded = None
        if isinstance(loaded, dict):
            data = loaded
    if data is not None:
        level = str(data.get("level") or "").lower()
    else:
        word = TEXT_LEVEL.search(text)
        bracket = NGINX_LEVEL.search(text)
        level = (word.group(1) if word else bracket.group(1) if bracket else "").lower()
    return LogLine(text, data, level)


def fake_error_pattern(line: LogLine) -> str | None:
    if line.level not in ERROR_LEVELS:
        return None
    for name, pattern in FAKE_ERROR_PATTERNS:
        if pattern.search(line.text):
            return name
    return None


def excerpt(line: LogLine) -> str:
    if line.data is not None:
        extra = {
            k: v
            for k, v in line.data.items()
            if k not in ("event", "level", "logger", "timestamp", "service")
        }
        fields = " ".join(f"{k}={v}" for k, v in list(extra.items())[:3])
        return shorten(f"{line.data.get('event')} {fields}".strip(), 90)
    return shorten(line.text, 90)


def cmd_logs_rows(log_dir: str) -> int:
    directory = Path(log_dir)
    window = os.environ.get("VALIDATE_LOG_WINDOW", "10m")
    fail_pct = env_float("VALIDATE_DEBUG_FAIL_PCT", 50.0)
    warn_pct = env_float("VALIDATE_DEBUG_WARN_PCT", 20.0)
    min_lines = int(env_float("VALIDATE_MIN_LOG_LINES", 20))

    unreadable = {
        p.stem: p.read_text(encoding="utf-8", errors="replace") for p in sorted(directory.glob("*.err"))
    }
    parsed: dict[str, list[LogLine]] = {}
    for path in sorted(directory.glob("*.log")):
        if path.stem in unreadable:
            continue
        candidates = [
            parse_log_line(raw) for raw in path.read_text(encoding="utf-8", errors="replace").splitlines()
        ]
        parsed[path.stem] = [line for line in candidates if line is not None]

    total = sum(len(v) for v in parsed.values())
    empty = [s for s, v in parsed.items() if not v]
    if unreadable:
        row(
            FAIL,
            "log window",
            "could not read the logs of "
            + "; ".join(f"{s}: {shorten(err, 80) or 'failed'}" for s, err in unreadable.items()),
        )
    elif total == 0:
        row(
            WARN,
            "log window",
            f"no log lines in the last {window} from any service: the log checks saw nothing",
        )
    else:
        detail = f"{total} lines from {len(parsed) - len(empty)} services in the last {window}"
        row(PASS, "log window", detail + (f" (quiet: {', '.join(empty)})" if empty else ""))

    # DNS errors: unrecovered ones FAIL. A JSON line naming its `target` (dns.resolution_failed, job.retrying
    # with a resolver error) counts as recovered when dns.resolution_recovered of that target follows it
    # in the same service's log: only that case WARNs.
    open_failures: list[tuple[str, LogLine]] = []
    recovered = 0
    for service, lines in parsed.items():
        pending: dict[str, list[LogLine]] = {}
        for line in lines:
            data = line.data or {}
            event = str(data.get("event") or "")
            target = str(data.get("target") or "")
            if event == DNS_RECOVERED_EVENT:
                recovered += len(pending.pop(target, []))
            elif event == DNS_EVENT or DNS_EVENT in line.text or DNS_MESSAGES.search(line.text):
                if target:
                    pending.setdefault(target, []).append(line)
                else:
                    open_failures.append((service, line))
        for target_lines in pending.values():
            open_failures.extend((service, line) for line in target_lines)
    if open_failures:
        counts: dict[str, int] = {}
        for service, _ in open_failures:
            counts[service] = counts.get(service, 0) + 1
        service, first = open_failures[0]
        row(
            FAIL,
            "dns errors in logs",
            f"{plural(len(open_failures), 'DNS error line')} in the last {window} ("
            + ", ".join(f"{s} {n}" for s, n in counts.items())
            + f"), e.g. {service}: {excerpt(first)}",
        )
    elif recovered:
        row(
            WARN,
            "dns errors in logs",
            f"{plural(recovered, 'DNS error line')} in the last {window}, every target recovered since",
        )
    else:
        row(PASS, "dns errors in logs", "none")

    worst, notes = PASS, []
    judged: list[tuple[float, str]] = []
    for service, lines in parsed.items():
        debug = sum(1 for line in lines if line.level == "debug")
        if len(lines) < min_lines:
            continue
        pct = 100.0 * debug / len(lines)
        judged.append((pct, f"{service} {debug}/{len(lines)} DEBUG ({pct:.0f}%)"))
        if pct >= fail_pct:
            worst = FAIL
            notes.append(f"{service} {debug}/{len(lines)} DEBUG ({pct:.0f}% >= {fail_pct:.0f}%)")
        elif pct >= warn_pct:
            worst = WARN if worst == PASS else worst
            notes.append(f"{service} {debug}/{len(lines)} DEBUG ({pct:.0f}% >= {warn_pct:.0f}%)")
    if notes:
        row(worst, "log verbosity", "; ".join(notes))
    elif judged:
        row(PASS, "log verbosity", "highest: " + max(judged)[1])
    else:
        row(PASS, "log verbosity", f"fewer than {min_lines} lines per service, nothing to judge")

    fakes: list[tuple[str, str, LogLine]] = []
    others: dict[str, int] = {}
    for service, lines in parsed.items():
        for line in lines:
            if line.level not in ERROR_LEVELS:
                continue
            pattern = fake_error_pattern(line)
            if pattern:
                fakes.append((service, pattern, line))
            else:
                others[service] = others.get(service, 0) + 1
    if fakes:
        service, pattern, line = fakes[0]
        row(
            FAIL,
            "fake errors in logs",
            f"{plural(len(fakes), 'ERROR line')} about a normal close,"
            f" e.g. {service} [{pattern}]: {excerpt(line)}",
        )
    else:
        row(PASS, "fake errors in logs", "none")
    if others:
        row(
            WARN,
            "error lines",
            f"{plural(sum(others.values()), 'ERROR line')} in the last {window}: "
            + ", ".join(f"{s} {n}" for s, n in others.items()),
        )
    else:
        row(PASS, "error lines", "none")
    return 0
