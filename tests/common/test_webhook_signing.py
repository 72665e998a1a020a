"""Outbound webhook signing, verification, routing of events to URLs, and the retry schedule."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from prosaas_common import webhooks
from prosaas_common.webhooks import (
    MAX_ATTEMPTS,
    RETRY_BASE_DELAYS_S,
    request_body,
    retry_delay,
    signature_header,
    signed_headers,
    target_urls,
    verify,
)

SECRET = "whsec_test-secret"
BODY = b'{"id":1,"event":"lead.created"}'
NOW = 1_795_000_000


def test_header_is_the_hmac_of_timestamp_dot_body() -> None:
    header = signature_header(SECRET, BODY, NOW)
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert header == f"t={NOW},v1={expected}"


def test_signed_headers_name_the_event_delivery_and_time() -> None:
    headers = signed_headers(SECRET, BODY, "lead.created", 42, now=NOW)
    assert headers["X-ProSaaS-Event"] == "lead.created"
    assert headers["X-ProSaaS-Delivery"] == "42"
    assert headers["X-ProSaaS-Timestamp"] == str(NOW)
    assert headers["Content-Type"] == "application/json"
    assert verify(SECRET, headers["X-ProSaaS-Signature"], BODY, now=NOW + 10)


@pytest.mark.parametrize(
    ("secret", "body", "now"),
    [
        ("whsec_other", BODY, NOW),  # wrong secret
        (SECRET, BODY + b" ", NOW),  # body changed
        (SECRET, BODY, NOW + 301),  # too old: a replay
        (SECRET, BODY, NOW - 301),  # too far in the future
    ],
)
def test_verify_refuses(secret: str, body: bytes, now: int) -> None:
    assert not verify(secret, signature_header(SECRET, BODY, NOW), body, now=now)


def test_verify_tolerance_and_malformed_headers() -> None:
    header = signature_header(SECRET, BODY, NOW)
    assert verify(SECRET, header, BODY, now=NOW + 300)
    assert verify(SECRET, header, BODY, tolerance_s=3600, now=NOW + 3000)
    assert not verify(SECRET, header, BODY, tolerance_s=60, now=NOW + 61)
    for broken in ("", "t=abc,v1=00", f"v1={header.split('v1=')[1]}", f"t={NOW}", "garbage"):
        assert not verify(SECRET, broken, BODY, now=NOW), broken
    # Several v1 values (as during a secret rotation on the receiving side): any match verifies.
    assert verify(SECRET, f"t={NOW},v1=00,{header.split(',')[1]}", BODY, now=NOW)


def test_body_is_the_documented_json() -> None:
    created = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    body = request_body(5, "lead.created", created, 9, {"lead": {"name": "Zoë"}})
    assert json.loads(body) == {
        "id": 5,
        "event": "lead.created",
        "created_at": "2026-11-23T12:00:00+00:00",
        "business_id": 9,
        "data": {"lead": {"name": "Zoë"}},
    }


def test_events_go_to_the_generic_and_their_own_url() -> None:
    settings = SimpleNamespace(
        webhook_url="https://a.example/all",
        call_completed_webhook_url="https://a.example/calls",
        lead_status_webhook_url="https://a.example/all",
    )
    assert target_urls("call.completed", settings) == ["https://a.example/all", "https://a.example/calls"]
    assert target_urls("lead.status_changed", settings) == ["https://a.example/all"]  # once
    assert target_urls("appointment.cancelled", settings) == ["https://a.example/all"]
    assert target_urls("lead.deleted", settings) == []  # not a webhook event
    only_calls = SimpleNamespace(
        webhook_url=None, call_completed_webhook_url=" ", lead_status_webhook_url=None
    )
    assert target_urls("call.completed", only_calls) == []
    assert target_urls("lead.created", None) == []


def test_retry_schedule_spans_about_a_day_with_full_jitter() -> None:
    assert MAX_ATTEMPTS == len(RETRY_BASE_DELAYS_S) + 1 >= 10
    assert tuple(sorted(RETRY_BASE_DELAYS_S)) == RETRY_BASE_DELAYS_S
    assert 20 * 3600 <= sum(RETRY_BASE_DELAYS_S) <= 24 * 3600
    rng = random.Random(7)  # noqa: S311 - jitter, not cryptography
    for attempt, base in enumerate(RETRY_BASE_DELAYS_S, start=1):
        delays = [retry_delay(attempt, rng) for _ in range(200)]
        assert all(base * 0.5 <= d <= base for d in delays), attempt
        assert max(delays) - min(delays) > base * 0.3, attempt  # jittered, not constant
    assert retry_delay(99, rng) <= RETRY_BASE_DELAYS_S[-1]
    assert retry_delay(0, rng) <= RETRY_BASE_DELAYS_S[0]


def test_new_secret_matches_the_settings_format() -> None:
    first, second = webhooks.new_secret(), webhooks.new_secret()
    assert first.startswith("whsec_")
    assert len(first) > 40
    assert first != second
