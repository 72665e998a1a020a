"""End to end, by voice: the call simulator plays Twilio against a live calls service that has no
OpenAI key, so the offline provider answers; the caller's lines are spoken by espeak-ng and heard by
pocketsphinx, and the call books a real appointment on the business's calendar, saves the caller's
name and reason on their lead, and ends with the agent's goodbye."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from prosaas_calls.app import create_app
from prosaas_calls.settings import CallsSettings
from prosaas_calls.simulate.caller import Target
from prosaas_calls.simulate.runner import Plan, one_call
from prosaas_calls.simulate.script import parse_script, prepare_audio
from prosaas_calls.speech.tts import synthesize
from prosaas_common.models import Appointment, Business, BusinessPhoneNumber, Call, CallTurn, Lead
from prosaas_common.provision import provision_business
from tests.support import serving, wait_until

TOKEN = "spoken-booking-auth-token"
PUBLIC_HOST = "calls.example.com"
NUMBER = "+12125550188"
CALLER = "+14155550123"
SCRIPT = [
    "wait",
    "say:Hello, I'd like to book a haircut",
    "wait",
    "say:Hi, I am David Brown",
    "wait",
    "say:The second one",
    "wait",
    "say:No thanks, goodbye",
    "wait:hangup",
]


@pytest.fixture
async def business(db_engine: AsyncEngine) -> int:
    async with async_sessionmaker(db_engine).begin() as db:
        row = Business(name="Bright Salon", timezone="Europe/London", default_region="GB")
        db.add(row)
        await db.flush()
        await provision_business(db, row)  # the default calendar, open on weekdays
        db.add(BusinessPhoneNumber(business_id=row.id, e164=NUMBER))
        return row.id


@asynccontextmanager
async def live_calls(settings: CallsSettings) -> AsyncIterator[str]:
    async with serving(create_app(settings)) as base_url:
        yield base_url


async def test_a_caller_books_an_appointment_by_voice(
    make_settings: Callable[..., CallsSettings], business: int, db_engine: AsyncEngine
) -> None:
    settings = make_settings(twilio_auth_token=TOKEN, public_host=PUBLIC_HOST, openai_api_key="")
    steps = parse_script(SCRIPT)
    plan = Plan(steps=steps, audio=await prepare_audio(steps, synthesize), turn_timeout=40)
    async with live_calls(settings) as base, httpx.AsyncClient(timeout=30) as http:
        target = Target(base_url=base, public_host=PUBLIC_HOST, auth_token=TOKEN, to=NUMBER, caller=CALLER)
        result = await one_call(target, http, plan)

        async def recorded() -> bool:
            async with db_engine.connect() as conn:
                reason = await conn.scalar(select(Call.end_reason).where(Call.call_sid == result.call_sid))
            return reason is not None

        await wait_until(recorded, timeout=20)

    assert result.refused is None
    assert result.ended_by == "bot_hangup", result.ended_by
    async with db_engine.connect() as conn:
        call = (await conn.execute(select(Call).where(Call.call_sid == result.call_sid))).one()
        [appointment] = (await conn.execute(select(Appointment))).all()
        [lead] = (await conn.execute(select(Lead))).all()
        turns = (
            await conn.execute(
                select(CallTurn.speaker, CallTurn.text)
                .where(CallTurn.call_id == call.id)
                .order_by(CallTurn.id)
            )
        ).all()
    assert (call.provider, call.end_reason) == ("offline", "agent_ended")
    assert appointment.call_sid == result.call_sid
    assert appointment.lead_id == lead.id
    assert (lead.phone, lead.first_name, lead.last_name, lead.reason) == (CALLER, "David", "Brown", "haircut")
    agent = [text for speaker, text in turns if speaker == "agent"]
    offered = next(text for text in agent if "I can offer" in text)
    booked = next(text for text in agent if text.startswith("You're booked for"))
    # The second of the times offered ("A, B or C", British format: no commas inside a time) is booked.
    times = re.split(r", | or ", offered.split("I can offer ")[1].split(". Which")[0])
    assert booked == f"You're booked for {times[1]}. Is there anything else?"
    assert agent[-1] == "Thank you for calling Bright Salon. Goodbye!"
    assert [text for speaker, text in turns if speaker == "caller"][:2] == [
        "hello i would like to book a haircut",
        "hi i am david brown",
    ]
