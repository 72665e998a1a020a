"""Call recordings on the calls side: a media stream of a business with ``recording_enabled`` starts a
recording through Twilio's REST API (a local Twilio Voice server here), a disabled business or a failing
Twilio leave the call alone; ``/webhook/recording_status`` is signature-checked (forged → 403, nothing
stored or enqueued) and a ``completed`` recording enqueues ``calls.fetch_recording`` once however often
Twilio repeats the callback. The REST client itself: form fields, errors without the token."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import websockets
from arq.connections import ArqRedis
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from prosaas_calls import stream_tokens
from prosaas_calls.app import create_app
from prosaas_calls.capacity import Acquired, CallCapacity
from prosaas_calls.providers.base import SessionConfig
from prosaas_calls.providers.scripted import ScriptedProvider
from prosaas_calls.settings import CallsSettings
from prosaas_calls.twilio_rest import TwilioError, TwilioVoice
from prosaas_common.jobs import JobName, Queue
from prosaas_common.models import Business, BusinessSettings, Call
from tests.calls.conftest import PUBLIC_HOST, TWILIO_TOKEN, twilio_post
from tests.fakes.twilio_voice import FakeVoiceState, running
from tests.support import free_port, serving, wait_until

ACCOUNT_SID = "AC" + "2" * 32
CALL_SID = "CA" + "5" * 32
STREAM_SID = "MZ" + "5" * 32
RECORDING_SID = "RE" + "6" * 32
CALLBACK = f"https://{PUBLIC_HOST}/webhook/recording_status"


@pytest.fixture
async def fake_twilio() -> AsyncIterator[tuple[FakeVoiceState, str]]:
    state = FakeVoiceState(ACCOUNT_SID, TWILIO_TOKEN)
    async with running(state) as base:
        yield state, base


async def a_call(engine: AsyncEngine, *, recording: bool | None, call_sid: str = CALL_SID) -> int:
    """A business (with settings unless ``recording`` is None) and its ringing call; the business id."""
    async with engine.begin() as conn:
        business_id = int(
            (await conn.execute(insert(Business).values(name="Dental").returning(Business.id))).scalar_one()
        )
        if recording is not None:
            await conn.execute(
                insert(BusinessSettings).values(business_id=business_id, recording_enabled=recording)
            )
        await conn.execute(
            insert(Call).values(
                business_id=business_id,
                call_sid=call_sid,
                direction="inbound",
                from_number="+14155550999",
                to_number="+14155550123",
                status="in-progress",
            )
        )
    return business_id


async def the_call(engine: AsyncEngine, call_sid: str = CALL_SID) -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(select(Call).where(Call.call_sid == call_sid))).one()


async def fetch_jobs(pool: ArqRedis) -> list[tuple[str, tuple[Any, ...]]]:
    jobs = await pool.queued_jobs(queue_name=Queue.DEFAULT.value)
    return [(job.function, job.args) for job in jobs]


def recording_status(status: str = "completed", **values: str) -> dict[str, str]:
    return {
        "AccountSid": ACCOUNT_SID,
        "CallSid": CALL_SID,
        "RecordingSid": RECORDING_SID,
        "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{RECORDING_SID}",
        "RecordingStatus": status,
        "RecordingDuration": "12",
        "RecordingChannels": "2",
        "RecordingSource": "StartCallRecordingAPI",
        **values,
    }


# --- the webhook -------------------------------------------------------------------------------------


async def test_a_completed_recording_is_stored_and_fetched_once(
    twilio_client: httpx.AsyncClient, db_engine: AsyncEngine, pool: ArqRedis
) -> None:
    await a_call(db_engine, recording=True)
    for _ in range(3):  # Twilio retries a callback it thinks failed
        response = await twilio_post(twilio_client, "/webhook/recording_status", recording_status())
        assert response.status_code == 204

    assert (await the_call(db_engine)).recording_sid == RECORDING_SID
    assert await fetch_jobs(pool) == [(JobName.CALLS_FETCH_RECORDING.value, (CALL_SID, RECORDING_SID))]
    [job] = await pool.queued_jobs(queue_name=Queue.DEFAULT.value)
    assert job.job_id == f"recording-fetch:{RECORDING_SID}"


async def test_a_forged_recording_status_is_refused_with_no_side_effect(
    twilio_client: httpx.AsyncClient, db_engine: AsyncEngine, pool: ArqRedis
) -> None:
    await a_call(db_engine, recording=True)
    forged = await twilio_post(
        twilio_client, "/webhook/recording_status", recording_status(), token="not-the-token"
    )
    unsigned = await twilio_client.post("/webhook/recording_status", data=recording_status())
    assert (forged.status_code, unsigned.status_code) == (403, 403)
    assert (await the_call(db_engine)).recording_sid is None
    assert await pool.zcard(Queue.DEFAULT.value) == 0


@pytest.mark.parametrize("status", ["in-progress", "absent", "failed"])
async def test_a_recording_that_is_not_complete_is_noted_but_not_fetched(
    twilio_client: httpx.AsyncClient, db_engine: AsyncEngine, pool: ArqRedis, status: str
) -> None:
    await a_call(db_engine, recording=True)
    response = await twilio_post(twilio_client, "/webhook/recording_status", recording_status(status))
    assert response.status_code == 204
    assert (await the_call(db_engine)).recording_sid == RECORDING_SID
    assert await pool.zcard(Queue.DEFAULT.value) == 0


@pytest.mark.parametrize(
    "form",
    [
        recording_status(CallSid="CA" + "9" * 32),  # a call we do not know
        recording_status(RecordingSid="../../evil"),  # not a recording sid
        recording_status(RecordingSid=""),
    ],
)
async def test_an_unusable_callback_answers_204_and_changes_nothing(
    twilio_client: httpx.AsyncClient, db_engine: AsyncEngine, pool: ArqRedis, form: dict[str, str]
) -> None:
    await a_call(db_engine, recording=True)
    response = await twilio_post(twilio_client, "/webhook/recording_status", form)
    assert response.status_code == 204
    assert (await the_call(db_engine)).recording_sid is None
    assert await pool.zcard(Queue.DEFAULT.value) == 0


async def test_a_call_whose_recording_is_stored_is_left_alone(
    twilio_client: httpx.AsyncClient, db_engine: AsyncEngine, pool: ArqRedis
) -> None:
    await a_call(db_engine, recording=True)
    async with db_engine.begin() as conn:
        await conn.execute(
            update(Call).values(recording_sid=RECORDING_SID, recording_path=f"1/{CALL_SID}.wav")
        )
    other = recording_status(RecordingSid="RE" + "7" * 32)
    assert (await twilio_post(twilio_client, "/webhook/recording_status", other)).status_code == 204
    assert (await the_call(db_engine)).recording_sid == RECORDING_SID
    assert await pool.zcard(Queue.DEFAULT.value) == 0


# --- starting the recording when the stream starts ---------------------------------------------------


@asynccontextmanager
async def live_calls(settings: CallsSettings) -> AsyncIterator[tuple[FastAPI, str]]:
    """The calls app under uvicorn, its calls voiced by a scripted provider; yields (app, http base)."""
    app = create_app(settings)

    def scripted(config: SessionConfig) -> ScriptedProvider:
        return ScriptedProvider(greeting_audio=bytes([0x7F]) * 800)

    app.state.provider_factory = scripted
    async with serving(app) as base_url:
        yield app, base_url


def start_message(token: str) -> str:
    return json.dumps(
        {
            "event": "start",
            "sequenceNumber": "1",
            "streamSid": STREAM_SID,
            "start": {
                "accountSid": ACCOUNT_SID,
                "streamSid": STREAM_SID,
                "callSid": CALL_SID,
                "tracks": ["inbound"],
                "customParameters": {"call_sid": CALL_SID, "stream_token": token},
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            },
        }
    )


STOP = json.dumps({"event": "stop", "sequenceNumber": "9", "streamSid": STREAM_SID, "stop": {}})


async def stream_a_call(app: FastAPI, base: str, redis: Redis) -> None:
    """What Twilio does once the call is connected: a stream with the call's token; waits for the
    greeting (so the call runs) and for the recording task to end, then stops the stream."""
    assert isinstance(await CallCapacity(redis, 50, ttl=60).acquire(CALL_SID, 1, 5), Acquired)
    token = await stream_tokens.issue(redis, CALL_SID)
    async with websockets.connect(base.replace("http://", "ws://") + "/ws/twilio-media") as ws:
        await ws.send(start_message(token))
        first = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert first["event"] == "media"

        async def no_recording_task() -> bool:
            return not app.state.recording_tasks

        await wait_until(no_recording_task, timeout=10)
        await ws.send(STOP)


@pytest.fixture
def voice_settings(
    make_settings: Callable[..., CallsSettings], fake_twilio: tuple[FakeVoiceState, str]
) -> CallsSettings:
    return make_settings(
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=TWILIO_TOKEN,
        public_host=PUBLIC_HOST,
        twilio_api_base_url=fake_twilio[1],
    )


async def test_a_recording_business_s_call_is_recorded_and_its_completion_enqueues_the_fetch(
    voice_settings: CallsSettings,
    fake_twilio: tuple[FakeVoiceState, str],
    db_engine: AsyncEngine,
    redis: Redis,
    pool: ArqRedis,
) -> None:
    state, fake_base = fake_twilio
    await a_call(db_engine, recording=True)
    async with live_calls(voice_settings) as (app, base):
        await stream_a_call(app, base, redis)
        [recording] = state.recordings.values()
        assert recording["call_sid"] == CALL_SID
        assert recording["status_callback"] == CALLBACK
        assert recording["status_callback_event"] == "completed absent"
        assert recording["channels"] == 2
        assert (await the_call(db_engine)).recording_sid == recording["sid"]

        async with httpx.AsyncClient(base_url=fake_base) as fake:
            await fake.post("/_fake/config", json={"deliver_base": base})
            for _ in range(2):  # a repeated callback
                answer = await fake.post(f"/_fake/recordings/{recording['sid']}/complete")
                assert answer.json() == {"status_code": 204}

    assert await fetch_jobs(pool) == [(JobName.CALLS_FETCH_RECORDING.value, (CALL_SID, recording["sid"]))]


@pytest.mark.parametrize("recording", [False, None])
async def test_a_business_without_recording_is_not_recorded(
    voice_settings: CallsSettings,
    fake_twilio: tuple[FakeVoiceState, str],
    db_engine: AsyncEngine,
    redis: Redis,
    recording: bool | None,
) -> None:
    await a_call(db_engine, recording=recording)
    async with live_calls(voice_settings) as (app, base):
        await stream_a_call(app, base, redis)
    assert fake_twilio[0].recordings == {}
    assert (await the_call(db_engine)).recording_sid is None


async def test_twilio_refusing_the_recording_does_not_end_the_call(
    voice_settings: CallsSettings,
    fake_twilio: tuple[FakeVoiceState, str],
    db_engine: AsyncEngine,
    redis: Redis,
) -> None:
    state, _ = fake_twilio
    state.ended = {CALL_SID}  # 21220: not in progress
    await a_call(db_engine, recording=True)
    async with live_calls(voice_settings) as (app, base):
        await stream_a_call(app, base, redis)  # the greeting still plays after the refusal
    assert state.recordings == {}
    assert (await the_call(db_engine)).recording_sid is None


async def test_without_twilio_credentials_nothing_is_started(
    make_settings: Callable[..., CallsSettings], db_engine: AsyncEngine, redis: Redis
) -> None:
    await a_call(db_engine, recording=True)
    async with live_calls(make_settings()) as (app, base):
        assert app.state.twilio_voice is None
        await stream_a_call(app, base, redis)
    assert (await the_call(db_engine)).recording_sid is None


# --- the REST client ---------------------------------------------------------------------------------


@pytest.fixture
async def voice(fake_twilio: tuple[FakeVoiceState, str]) -> AsyncIterator[TwilioVoice]:
    client = TwilioVoice(base_url=fake_twilio[1], account_sid=ACCOUNT_SID, auth_token=TWILIO_TOKEN)
    yield client
    await client.aclose()


async def test_update_call_replaces_the_calls_twiml(
    voice: TwilioVoice, fake_twilio: tuple[FakeVoiceState, str]
) -> None:
    twiml = "<Response><Dial>+14155550100</Dial></Response>"
    answer = await voice.update_call(CALL_SID, twiml)
    assert answer["sid"] == CALL_SID
    assert fake_twilio[0].updates == [{"call_sid": CALL_SID, "Twiml": twiml}]


async def test_start_recording_returns_the_recording_sid(
    voice: TwilioVoice, fake_twilio: tuple[FakeVoiceState, str]
) -> None:
    sid = await voice.start_recording(CALL_SID, CALLBACK)
    assert sid.startswith("RE")
    assert list(fake_twilio[0].recordings) == [sid]


async def test_twilio_errors_carry_status_code_and_message_but_never_the_token(
    voice: TwilioVoice, fake_twilio: tuple[FakeVoiceState, str]
) -> None:
    fake_twilio[0].ended = {CALL_SID}
    with pytest.raises(TwilioError) as refused:
        await voice.update_call(CALL_SID, "<Response/>")
    assert (refused.value.status, refused.value.code) == (400, 21220)
    assert "not in-progress" in refused.value.message

    wrong = TwilioVoice(base_url=fake_twilio[1], account_sid=ACCOUNT_SID, auth_token="wrong-token-xyz")
    with pytest.raises(TwilioError) as unauthorised:
        await wrong.start_recording(CALL_SID, CALLBACK)
    await wrong.aclose()
    assert (unauthorised.value.status, unauthorised.value.code) == (401, 20003)

    fake_twilio[0].fail_next = 1
    with pytest.raises(TwilioError) as busy:
        await voice.start_recording(CALL_SID, CALLBACK)
    assert busy.value.status == 503

    gone = TwilioVoice(
        base_url=f"http://127.0.0.1:{free_port()}", account_sid=ACCOUNT_SID, auth_token=TWILIO_TOKEN
    )
    with pytest.raises(TwilioError) as unreachable:
        await gone.start_recording(CALL_SID, CALLBACK)
    await gone.aclose()
    assert unreachable.value.status is None
    for error in (refused.value, unauthorised.value, busy.value, unreachable.value):
        assert TWILIO_TOKEN not in f"{error} {error!r} {error.args}"
        assert "wrong-token-xyz" not in f"{error} {error!r} {error.args}"


@pytest.mark.parametrize("sid", ["../Accounts", "CA123", f"{CALL_SID}/Recordings", ""])
async def test_only_call_sids_go_into_the_path(voice: TwilioVoice, sid: str) -> None:
    with pytest.raises(ValueError, match="not a Twilio call sid"):
        await voice.update_call(sid, "<Response/>")
