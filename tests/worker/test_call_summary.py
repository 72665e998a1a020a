"""Model-written call summaries: ``calls.finalize`` asks a local Chat Completions server (the real protocol)
for the summary when ``OPENAI_API_KEY`` is set, and falls back to the extractive one — with one WARNING
and the job still done — when the model cannot answer. No key: no request at all."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from prosaas_common.models import Call, DomainEvent, LeadActivity
from prosaas_common.settings import ConfigError, build_settings
from prosaas_worker import call_summary
from prosaas_worker.call_summary import ELIDED, Turn, transcript
from prosaas_worker.jobs import calls
from prosaas_worker.settings import WorkerConfig
from tests.fakes.openai_chat import FakeChat, build_app
from tests.support import serving, wait_until
from tests.worker.conftest import LogCapture
from tests.worker.messaging_support import MakeWorker, Worker, make_shop
from tests.worker.test_call_finalize import CALL_SID, a_booking_of_the_call, a_finished_call

API_KEY = "sk-test-summary-key-0123456789"
EXTRACTIVE = (
    "Caller said: My tooth hurts / Tomorrow morning? "
    "Booked an appointment for 2026-07-01T08:00:00+00:00. Duration 95 s."
)


@dataclass
class ChatServer:
    state: FakeChat
    base_url: str


@pytest.fixture
async def openai_chat() -> AsyncIterator[ChatServer]:
    state = FakeChat(API_KEY)
    async with serving(build_app(state)) as base_url:
        yield ChatServer(state, f"{base_url}/v1")
        state.release()


def summary_worker(make_worker: MakeWorker, chat: ChatServer, **overrides: Any) -> Worker:
    values: dict[str, Any] = {"openai_api_key": API_KEY, "openai_api_base_url": chat.base_url}
    return make_worker(**(values | overrides))


async def a_booked_call(worker: Worker, engine: AsyncEngine) -> None:
    """The finalize test's call (three turns, 95 s) at Bright Dental, with a booking 1 July 08:00 UTC."""
    shop = await make_shop(worker)
    await a_finished_call(engine, shop.business_id)
    await a_booking_of_the_call(engine, shop.business_id, datetime(2026, 7, 1, 8, 0, tzinfo=UTC))


async def stored(engine: AsyncEngine) -> tuple[Any, dict[str, Any], list[str]]:
    """The call row, the ``call.completed`` payload and the timeline summaries."""
    async with engine.connect() as conn:
        call = (await conn.execute(select(Call))).one()
        payload = (
            await conn.execute(select(DomainEvent.payload).where(DomainEvent.type == "call.completed"))
        ).scalar_one()
        timeline = (
            (await conn.execute(select(LeadActivity.summary).where(LeadActivity.kind == "call")))
            .scalars()
            .all()
        )
    return call, payload, list(timeline)


async def test_the_model_writes_the_summary_from_the_turns_once(
    make_worker: MakeWorker, db_engine: AsyncEngine, openai_chat: ChatServer, info_logs: LogCapture
) -> None:
    worker = summary_worker(make_worker, openai_chat, openai_summary_model="gpt-test-mini")
    await a_booked_call(worker, db_engine)

    assert await calls.finalize(worker.ctx(), CALL_SID) == "finalized"
    assert await calls.finalize(worker.ctx(), CALL_SID) == "skipped"

    assert len(openai_chat.state.received) == 1  # the second run asked nothing
    request = openai_chat.state.received[0]
    assert request["model"] == "gpt-test-mini"
    system, user = request["messages"]
    assert (system["role"], user["role"]) == ("system", "user")
    assert "Bright Dental" in system["content"]
    assert "Receptionist: Hello!\nCaller: My tooth hurts\nCaller: Tomorrow morning?" in user["content"]
    # The booking on the business's wall clock (London is UTC+1 in July).
    assert "Booked during the call: 2026-07-01 09:00 (Europe/London)" in user["content"]

    call, payload, timeline = await stored(db_engine)
    reply = openai_chat.state.reply
    assert reply is not None
    assert call.summary == reply
    assert call.usage["summary_source"] == "model"
    assert (payload["summary"], payload["summary_source"]) == (reply, "model")
    assert timeline == [f"Call (inbound): {reply}"]
    assert not [r for r in info_logs.records() if r["level"] in ("warning", "error")]


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        ({"key": "sk-wrong-key"}, "status 401 invalid_api_key"),
        ({"fail_status": 500}, "status 500"),
        ({"fail_status": 429}, "status 429"),
        ({"malformed": True}, "malformed response"),
        ({"reply": None}, "empty output"),
        ({"reply": "   "}, "empty output"),
        ({"hang": True}, "timeout"),
    ],
    ids=["wrong-key", "500", "429", "malformed", "null-content", "blank", "timeout"],
)
async def test_a_model_that_cannot_answer_leaves_the_extractive_summary(
    make_worker: MakeWorker,
    db_engine: AsyncEngine,
    openai_chat: ChatServer,
    info_logs: LogCapture,
    setup: dict[str, Any],
    reason: str,
) -> None:
    key = setup.pop("key", API_KEY)
    for name, value in setup.items():
        setattr(openai_chat.state, name, value)
    worker = summary_worker(make_worker, openai_chat, openai_api_key=key, openai_summary_timeout=0.3)
    await a_booked_call(worker, db_engine)

    assert await calls.finalize(worker.ctx(), CALL_SID) == "finalized"

    call, payload, timeline = await stored(db_engine)
    assert call.summary == EXTRACTIVE
    assert call.usage["summary_source"] == "extractive"
    assert payload["summary_source"] == "extractive"
    assert timeline == [f"Call (inbound): {EXTRACTIVE}"]
    warnings = [r for r in info_logs.records() if r["level"] in ("warning", "error", "critical")]
    assert [(w["event"], w["level"], w["reason"], w["call_sid"]) for w in warnings] == [
        ("call.summary_fallback", "warning", reason, CALL_SID)
    ]
    raw = info_logs.stream.getvalue()
    assert key not in raw
    assert API_KEY not in raw
    assert len(openai_chat.state.received) == (0 if reason.startswith("status 401") else 1)


async def test_no_row_lock_is_held_while_the_model_writes(
    make_worker: MakeWorker, db_engine: AsyncEngine, openai_chat: ChatServer
) -> None:
    """A run finishing while another waits on the model wins; the waiting one then writes nothing."""
    openai_chat.state.hang = True
    worker = summary_worker(make_worker, openai_chat, openai_summary_timeout=20)
    await a_booked_call(worker, db_engine)
    job = asyncio.create_task(calls.finalize(worker.ctx(), CALL_SID))

    async def asked() -> bool:
        return bool(openai_chat.state.received)

    await wait_until(asked)
    async with db_engine.begin() as conn:
        await conn.execute(text("SET LOCAL lock_timeout = '2s'"))  # a held row lock fails this update
        await conn.execute(update(Call).where(Call.call_sid == CALL_SID).values(summary="Written elsewhere."))
    openai_chat.state.release()

    assert await asyncio.wait_for(job, 10) == "skipped"
    async with db_engine.connect() as conn:
        call = (await conn.execute(select(Call))).one()
        events = (await conn.execute(select(DomainEvent.type))).scalars().all()
    assert (call.summary, call.usage) == ("Written elsewhere.", {})
    assert "call.completed" not in events


async def test_without_a_key_no_request_is_made(
    make_worker: MakeWorker, db_engine: AsyncEngine, openai_chat: ChatServer, info_logs: LogCapture
) -> None:
    worker = make_worker(openai_api_base_url=openai_chat.base_url, openai_api_key="  ")
    assert worker.resources.settings.openai_api_key is None
    await a_booked_call(worker, db_engine)

    assert await calls.finalize(worker.ctx(), CALL_SID) == "finalized"

    assert openai_chat.state.received == []
    call, payload, _ = await stored(db_engine)
    assert (call.summary, call.usage["summary_source"], payload["summary_source"]) == (
        EXTRACTIVE,
        "extractive",
        "extractive",
    )
    assert not [r for r in info_logs.records() if r["level"] == "warning"]


async def test_a_call_without_words_asks_the_model_nothing(
    make_worker: MakeWorker, db_engine: AsyncEngine, openai_chat: ChatServer
) -> None:
    worker = summary_worker(make_worker, openai_chat)
    shop = await make_shop(worker)
    async with db_engine.begin() as conn:
        await conn.execute(
            insert(Call).values(
                business_id=shop.business_id,
                call_sid=CALL_SID,
                direction="inbound",
                from_number="+447700900321",
                to_number="+14155550000",
                status="no-answer",
            )
        )

    assert await calls.finalize(worker.ctx(), CALL_SID) == "finalized"

    assert openai_chat.state.received == []
    call, _, _ = await stored(db_engine)
    assert call.summary == "No conversation was recorded."


def test_a_long_transcript_keeps_its_opening_and_its_end_within_the_cap() -> None:
    turns = [Turn("caller" if i % 2 else "agent", f"turn {i} " + "words " * 60) for i in range(400)]
    text = transcript(turns, limit=5000)
    lines = text.splitlines()
    assert len(text) <= 5000
    assert lines[0].startswith("Receptionist: turn 0 ")
    assert lines[-1].startswith("Caller: turn 399 ")
    assert lines.count(ELIDED) == 1
    head = lines[: lines.index(ELIDED)]
    assert len(head) > len(lines) - len(head) - 1  # the opening gets the larger share


def test_one_huge_turn_is_clipped_and_blank_turns_are_dropped() -> None:
    text = transcript([Turn("caller", "x" * 50_000), Turn("agent", "  "), Turn("system", "booked")])
    first, second = text.splitlines()
    assert len(first) == len("Caller: ") + call_summary.MAX_TURN_CHARS
    assert first.endswith("…")
    assert second == "Note: booked"


def test_summary_settings(redis_url: str, database_url: str) -> None:
    base = {"app_env": "test", "redis_url": redis_url, "database_url": database_url}
    config = build_settings(WorkerConfig, **base)
    assert (config.openai_api_key, config.openai_api_base_url) == (None, "https://api.openai.com/v1")
    assert config.openai_summary_model
    config = build_settings(
        WorkerConfig, **base, openai_api_key=API_KEY, openai_api_base_url="http://llm.internal:8000/v1/"
    )
    assert config.openai_api_base_url == "http://llm.internal:8000/v1"
    assert API_KEY not in repr(config)
    with pytest.raises(ConfigError) as bad:
        build_settings(WorkerConfig, **base, openai_api_base_url="api.openai.com/v1")
    assert "openai_api_base_url" in str(bad.value).lower()
