"""``calls.fetch_recording``: the finished recording is downloaded from (a local) Twilio into the store and
linked to its call — once: a second run does nothing, a transient failure is retried and stores nothing
partial, a refusal gives up, a file already stored is only linked; S3 storage works the same way, and the
job runs when enqueued to a real worker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from arq import Retry
from arq.connections import ArqRedis
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from prosaas_common.jobs import JobName, enqueue
from prosaas_common.models import Business, Call
from prosaas_common.storage import S3Store, recording_key
from prosaas_worker.jobs import recordings
from tests.fakes.s3_server import s3_server
from tests.fakes.twilio_voice import FakeVoiceState, running
from tests.support import wait_until
from tests.worker.conftest import MakeConfig, RunGroup
from tests.worker.messaging_support import ACCOUNT_SID, AUTH_TOKEN, MakeWorker, Worker

CALL_SID = "CA" + "4" * 32
BUCKET = "prosaas-recordings"


@pytest.fixture
async def twilio_voice() -> AsyncIterator[tuple[FakeVoiceState, str]]:
    state = FakeVoiceState(ACCOUNT_SID, AUTH_TOKEN)
    async with running(state) as base:
        yield state, base


async def a_recorded_call(engine: AsyncEngine, state: FakeVoiceState) -> tuple[int, str]:
    """A finished call and its completed recording at Twilio: (business id, recording sid)."""
    async with engine.begin() as conn:
        business_id = int(
            (await conn.execute(insert(Business).values(name="Dental").returning(Business.id))).scalar_one()
        )
        await conn.execute(
            insert(Call).values(
                business_id=business_id,
                call_sid=CALL_SID,
                direction="inbound",
                from_number="+14155550999",
                to_number="+14155550123",
                status="completed",
            )
        )
    return business_id, state.add_recording(CALL_SID, status="completed")


async def call_row(engine: AsyncEngine) -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(select(Call).where(Call.call_sid == CALL_SID))).one()


def files_under(root: Path) -> list[Path]:
    return list(root.rglob("*"))


def local_worker(make_worker: MakeWorker, base: str, root: Path, **overrides: Any) -> Worker:
    return make_worker(base, recordings_dir=str(root), **overrides)


async def test_the_recording_is_stored_linked_and_not_fetched_twice(
    make_worker: MakeWorker,
    twilio_voice: tuple[FakeVoiceState, str],
    db_engine: AsyncEngine,
    tmp_path: Path,
) -> None:
    state, base = twilio_voice
    business_id, recording_sid = await a_recorded_call(db_engine, state)
    worker = local_worker(make_worker, base, tmp_path)

    assert await recordings.fetch_recording(worker.ctx(), CALL_SID, recording_sid) == "stored"

    stored = tmp_path / str(business_id) / f"{CALL_SID}.wav"
    assert stored.read_bytes() == state.recordings[recording_sid]["_wav"]
    assert stored.read_bytes()[:4] == b"RIFF"
    row = await call_row(db_engine)
    assert (row.recording_path, row.recording_sid) == (f"{business_id}/{CALL_SID}.wav", recording_sid)
    assert not state.recordings[recording_sid]["deleted"]  # RECORDINGS_DELETE_FROM_TWILIO is off

    assert await recordings.fetch_recording(worker.ctx(), CALL_SID, recording_sid) == "skipped"
    assert state.media_requests == 1


async def test_a_transient_failure_is_retried_and_stores_nothing_partial(
    make_worker: MakeWorker,
    twilio_voice: tuple[FakeVoiceState, str],
    db_engine: AsyncEngine,
    tmp_path: Path,
) -> None:
    state, base = twilio_voice
    business_id, recording_sid = await a_recorded_call(db_engine, state)
    worker = local_worker(make_worker, base, tmp_path)
    state.media_fail_next = 1  # a 503 from Twilio

    with pytest.raises(Retry) as retry:
        await recordings.fetch_recording(worker.ctx(), CALL_SID, recording_sid)

    assert retry.value.defer_score == 15_000  # the first delay, in ms
    assert (await call_row(db_engine)).recording_path is None
    assert not (tmp_path / str(business_id) / f"{CALL_SID}.wav").exists()
    assert await recordings.fetch_recording(worker.ctx(), CALL_SID, recording_sid) == "stored"
    assert (await call_row(db_engine)).recording_path == f"{business_id}/{CALL_SID}.wav"


async def test_media_not_ready_yet_is_retried_but_a_refusal_gives_up(
    make_worker: MakeWorker,
    twilio_voice: tuple[FakeVoiceState, str],
    db_engine: AsyncEngine,
    tmp_path: Path,
) -> None:
    state, base = twilio_voice
    await a_recorded_call(db_engine, state)
    worker = local_worker(make_worker, base, tmp_path)
    with pytest.raises(Retry):  # 404: Twilio has no media under that sid (yet)
        await recordings.fetch_recording(worker.ctx(), CALL_SID, "RE" + "0" * 32)

    state.media_fail_next, state.media_fail_status = 1, 400
    recording_sid = next(iter(state.recordings))
    assert await recordings.fetch_recording(worker.ctx(), CALL_SID, recording_sid) == "refused"
    assert (await call_row(db_engine)).recording_path is None


async def test_a_recording_already_in_the_store_is_only_linked(
    make_worker: MakeWorker,
    twilio_voice: tuple[FakeVoiceState, str],
    db_engine: AsyncEngine,
    tmp_path: Path,
) -> None:
    """A try that stored the file and died before its commit: the next one links without downloading."""
    state, base = twilio_voice
    business_id, recording_sid = await a_recorded_call(db_engine, state)
    (tmp_path / str(business_id)).mkdir()
    (tmp_path / str(business_id) / f"{CALL_SID}.wav").write_bytes(b"RIFF-stored-before")
    worker = local_worker(make_worker, base, tmp_path)

    assert await recordings.fetch_recording(worker.ctx(), CALL_SID, recording_sid) == "linked"
    assert state.media_requests == 0
    assert (await call_row(db_engine)).recording_path == f"{business_id}/{CALL_SID}.wav"


async def test_odd_input_and_missing_configuration_do_nothing(
    make_worker: MakeWorker,
    twilio_voice: tuple[FakeVoiceState, str],
    db_engine: AsyncEngine,
    tmp_path: Path,
) -> None:
    state, base = twilio_voice
    _, recording_sid = await a_recorded_call(db_engine, state)
    worker = local_worker(make_worker, base, tmp_path)
    ctx = worker.ctx()
    assert await recordings.fetch_recording(ctx, CALL_SID, "../../Accounts") == "invalid"
    assert await recordings.fetch_recording(ctx, "CA" + "9" * 32, recording_sid) == "missing"
    unconfigured = make_worker(None, recordings_dir=str(tmp_path))
    assert await recordings.fetch_recording(unconfigured.ctx(), CALL_SID, recording_sid) == "unconfigured"
    assert state.media_requests == 0
    assert files_under(tmp_path) == []


async def test_the_recording_can_be_deleted_at_twilio_once_stored(
    make_worker: MakeWorker,
    twilio_voice: tuple[FakeVoiceState, str],
    db_engine: AsyncEngine,
    tmp_path: Path,
) -> None:
    state, base = twilio_voice
    _, recording_sid = await a_recorded_call(db_engine, state)
    worker = local_worker(make_worker, base, tmp_path, recordings_delete_from_twilio=True)
    assert await recordings.fetch_recording(worker.ctx(), CALL_SID, recording_sid) == "stored"
    assert state.recordings[recording_sid]["deleted"]


async def test_recordings_go_to_s3_when_configured(
    make_worker: MakeWorker,
    twilio_voice: tuple[FakeVoiceState, str],
    db_engine: AsyncEngine,
) -> None:
    state, base = twilio_voice
    business_id, recording_sid = await a_recorded_call(db_engine, state)
    with s3_server() as endpoint:
        await stored_in_s3(make_worker, base, db_engine, endpoint, business_id, recording_sid, state)


async def stored_in_s3(
    make_worker: MakeWorker,
    base: str,
    db_engine: AsyncEngine,
    s3_endpoint: str,
    business_id: int,
    recording_sid: str,
    state: FakeVoiceState,
) -> None:
    bucket = S3Store(
        bucket=BUCKET,
        endpoint_url=s3_endpoint,
        region="us-east-1",
        access_key_id="k",
        secret_access_key="s",
    )
    async with bucket.client() as s3:
        await s3.create_bucket(Bucket=BUCKET)
    worker = make_worker(
        base,
        recordings_storage="s3",
        s3_bucket=BUCKET,
        s3_endpoint_url=s3_endpoint,
        s3_access_key_id="k",
        s3_secret_access_key="s",
    )
    try:
        assert await recordings.fetch_recording(worker.ctx(), CALL_SID, recording_sid) == "stored"
        key = recording_key(business_id, CALL_SID)
        stored = b"".join([chunk async for chunk in bucket.read(key)])
        assert stored == state.recordings[recording_sid]["_wav"]
        assert (await call_row(db_engine)).recording_path == key
    finally:
        async with bucket.client() as s3:
            await s3.delete_object(Bucket=BUCKET, Key=recording_key(business_id, CALL_SID))
            await s3.delete_bucket(Bucket=BUCKET)


async def test_an_enqueued_fetch_runs_on_the_worker(
    make_config: MakeConfig,
    run_group: RunGroup,
    pool: ArqRedis,
    twilio_voice: tuple[FakeVoiceState, str],
    db_engine: AsyncEngine,
    tmp_path: Path,
) -> None:
    state, base = twilio_voice
    _, recording_sid = await a_recorded_call(db_engine, state)
    config = make_config(
        twilio_api_base_url=base,
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        recordings_dir=str(tmp_path),
    )
    async with run_group(config):
        await enqueue(pool, JobName.CALLS_FETCH_RECORDING, CALL_SID, recording_sid)

        async def linked() -> bool:
            return (await call_row(db_engine)).recording_path is not None

        await wait_until(linked, timeout=15)
