"""Log output: JSON lines, level filtering, bound context, library chatter and the repeated-failure policy."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from prosaas_common.logging import (
    RepeatedFailureLog,
    bind_context,
    clear_context,
    configure_logging,
    get_logger,
)
from prosaas_common.settings import LogFormat


@pytest.fixture
def json_stream() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging("testsvc", "INFO", LogFormat.JSON, stream=stream)
    clear_context()
    yield stream
    clear_context()


def lines_of(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_json_lines_parse_with_event_level_time_and_service(json_stream: io.StringIO) -> None:
    get_logger("prosaas.test").info("thing.happened", answer=42)
    [record] = lines_of(json_stream)
    assert record["event"] == "thing.happened"
    assert record["level"] == "info"
    assert record["service"] == "testsvc"
    assert record["answer"] == 42
    assert str(record["timestamp"]).endswith("Z")


def test_info_hides_debug(json_stream: io.StringIO) -> None:
    log = get_logger("prosaas.test")
    log.debug("frame.detail")
    log.info("call.started")
    assert [r["event"] for r in lines_of(json_stream)] == ["call.started"]


def test_debug_level_shows_debug() -> None:
    stream = io.StringIO()
    configure_logging("testsvc", "DEBUG", LogFormat.JSON, stream=stream)
    get_logger("prosaas.test").debug("frame.detail")
    assert [r["event"] for r in lines_of(stream)] == ["frame.detail"]


def test_bound_context_travels_with_events(json_stream: io.StringIO) -> None:
    bind_context(request_id="req-1", business_id=7)
    get_logger("prosaas.test").info("lead.created")
    clear_context()
    get_logger("prosaas.test").info("other")
    first, second = lines_of(json_stream)
    assert first["request_id"] == "req-1"
    assert first["business_id"] == 7
    assert "request_id" not in second


def test_stdlib_libraries_share_renderer_and_are_quiet_at_info(json_stream: io.StringIO) -> None:
    logging.getLogger("sqlalchemy.engine").info("SELECT 1")
    logging.getLogger("uvicorn.error").info("Started server process")
    logging.getLogger("arq.worker").warning("redis is slow")
    [record] = lines_of(json_stream)
    assert record["event"] == "redis is slow"
    assert record["level"] == "warning"
    assert record["logger"] == "arq.worker"
    assert record["service"] == "testsvc"


def test_exceptions_render_inside_the_json_line(json_stream: io.StringIO) -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        get_logger("prosaas.test").exception("job.failed")
    [record] = lines_of(json_stream)
    assert "ValueError: boom" in str(record["exception"])


def test_console_format_is_readable_text() -> None:
    stream = io.StringIO()
    configure_logging("testsvc", "INFO", LogFormat.CONSOLE, stream=stream)
    get_logger("prosaas.test").info("call.started", call_sid="CA1")
    text = stream.getvalue()
    assert "call.started" in text
    assert "call_sid=CA1" in text
    assert not text.lstrip().startswith("{")


def test_repeated_failures_first_warning_then_every_fifth_at_debug() -> None:
    with structlog.testing.capture_logs() as captured:
        limiter = RepeatedFailureLog(structlog.get_logger("t"), every=5)
        counts = [limiter.failure("redis", "redis.unreachable") for _ in range(12)]
    assert counts == list(range(1, 13))
    assert [(e["log_level"], e["occurrences"]) for e in captured] == [
        ("warning", 1),
        ("debug", 5),
        ("debug", 10),
    ]


def test_repeated_failures_are_counted_per_key_and_reset_on_recovery() -> None:
    with structlog.testing.capture_logs() as captured:
        limiter = RepeatedFailureLog(structlog.get_logger("t"))
        limiter.failure("a", "x.failed")
        limiter.failure("b", "x.failed")
        limiter.failure("a", "x.failed")
        limiter.recovered("a", "x.recovered")
        limiter.recovered("never-failed", "x.recovered")
        limiter.failure("a", "x.failed")
    assert [(e["event"], e["key"], e["log_level"]) for e in captured] == [
        ("x.failed", "a", "warning"),
        ("x.failed", "b", "warning"),
        ("x.recovered", "a", "info"),
        ("x.failed", "a", "warning"),
    ]
    assert captured[2]["failures"] == 2


def test_repeated_failure_keys_are_bounded() -> None:
    limiter = RepeatedFailureLog(structlog.get_logger("t"), max_keys=3)
    with structlog.testing.capture_logs():
        for key in "abcd":
            limiter.failure(key, "x.failed")
    assert limiter.occurrences("a") == 0
    assert limiter.occurrences("d") == 1
