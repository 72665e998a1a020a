"""Transferring a call to a person: the agent's ``transfer_call`` tool, its "transferring you" heard in
full, then the live call redirected at Twilio with ``<Dial>`` to the business's number; without a
number, or when Twilio refuses, the agent says so and the call goes on."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from arq.connections import ArqRedis
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from prosaas_calls.call_runner import TRANSFER_FAILED, transfer_if_asked
from prosaas_calls.media.twilio_protocol import Mark, StreamCounters
from prosaas_calls.providers.base import AgentAudio, ProviderClosed, ResponseDone, ToolCall
from prosaas_calls.providers.scripted import ScriptedProvider
from prosaas_calls.session import CallSession
from prosaas_calls.tools import NO_TRANSFER, CallTools
from prosaas_calls.twilio_rest import TwilioVoice
from prosaas_common.models import Business, BusinessSettings
from prosaas_common.provision import provision_business
from tests.fakes.twilio_voice import FakeVoiceState, running

ACCOUNT, TOKEN = "AC" + "1" * 32, "voice-token"
CALL_SID = "CA" + "8" * 32
STREAM = "MZ" + "8" * 32
AUDIO = bytes([0x7F]) * 1600  # 200 ms


@pytest.fixture
async def twilio() -> AsyncIterator[tuple[FakeVoiceState, TwilioVoice]]:
    state = FakeVoiceState(ACCOUNT, TOKEN)
    async with running(state) as base_url:
        client = TwilioVoice(base_url=base_url, account_sid=ACCOUNT, auth_token=TOKEN)
        yield state, client
        await client.aclose()


async def business(db_engine: AsyncEngine, transfer_number: str | None) -> int:
    async with async_sessionmaker(db_engine).begin() as db:
        row = Business(name="Bright Dental", timezone="Europe/London", default_region="GB")
        db.add(row)
        await db.flush()
        await provision_business(db, row)
        await db.execute(
            update(BusinessSettings)
            .where(BusinessSettings.business_id == row.id)
            .values(transfer_number=transfer_number)
        )
        return row.id


class Call:
    """A session wired like the call runner does it, with a Twilio that plays audio at once."""

    def __init__(self, db_engine: AsyncEngine, pool: ArqRedis, business_id: int, client: TwilioVoice) -> None:
        async def job_pool() -> ArqRedis:
            return pool

        self.provider = ScriptedProvider()
        self.tools = CallTools(
            async_sessionmaker(db_engine), job_pool, business_id=business_id, call_sid=CALL_SID, caller=None
        )
        self.session = CallSession(
            call_sid=CALL_SID,
            stream_sid=STREAM,
            send=self.send,
            provider=self.provider,
            turns=self,
            counters=StreamCounters(),
            tools=self.tools,
            requested_end=self.tools.requested_end,
            before_end=lambda reason: transfer_if_asked(client, self.tools, self.provider, reason),
        )

    def add(self, speaker: str, text: str, offset_ms: int) -> None:
        pass

    async def send(self, text: str) -> None:
        message: dict[str, Any] = json.loads(text)
        if message["event"] == "mark":
            name = message["mark"]["name"]
            asyncio.get_running_loop().call_soon(
                lambda: asyncio.ensure_future(self.session.on_twilio(Mark(STREAM, None, name)))
            )

    async def ask_for_transfer(self) -> str:
        self.provider.emit(
            ToolCall("t1", "transfer_call", {"reason": "wants a person"}),
            AgentAudio("r1", AUDIO),
            ResponseDone("r1"),
            ProviderClosed("closed"),  # reached only if the call was not transferred
        )
        return await asyncio.wait_for(self.session.run_provider(), 10)


async def test_the_call_is_dialled_through_once_the_agent_was_heard(
    db_engine: AsyncEngine, pool: ArqRedis, twilio: tuple[FakeVoiceState, TwilioVoice]
) -> None:
    state, client = twilio
    call = Call(db_engine, pool, await business(db_engine, "+442071838750"), client)

    assert await call.ask_for_transfer() == "transferred"
    assert call.provider.tool_results[0][1]["ok"] is True
    assert call.session.playback.played_ms == 200  # "transferring you" heard in full before the redirect
    [redirect] = state.updates
    assert redirect["call_sid"] == CALL_SID
    assert "<Dial>+442071838750</Dial>" in redirect["Twiml"]


async def test_without_a_transfer_number_the_agent_says_so_and_the_call_goes_on(
    db_engine: AsyncEngine, pool: ArqRedis, twilio: tuple[FakeVoiceState, TwilioVoice]
) -> None:
    state, client = twilio
    call = Call(db_engine, pool, await business(db_engine, None), client)

    assert await call.ask_for_transfer() == "closed"
    assert call.provider.tool_results == [("t1", {"error": NO_TRANSFER})]
    assert state.updates == []


async def test_a_refused_redirect_is_apologised_for_and_the_call_goes_on(
    db_engine: AsyncEngine, pool: ArqRedis, twilio: tuple[FakeVoiceState, TwilioVoice]
) -> None:
    state, client = twilio
    state.ended.add(CALL_SID)  # Twilio: 21220, the call is not in progress
    call = Call(db_engine, pool, await business(db_engine, "+442071838750"), client)

    assert await call.ask_for_transfer() == "closed"
    assert call.provider.prompts == [TRANSFER_FAILED]
    assert call.tools.requested_end() is None  # the agent may try again or end the call normally
