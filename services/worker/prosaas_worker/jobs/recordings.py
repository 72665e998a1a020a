"""``calls.fetch_recording(call_sid, recording_sid)``: copy a finished Twilio recording into our storage.

The calls service enqueues it when Twilio reports the recording ``completed``. The media is fetched from
``{TWILIO_API_BASE_URL}/2010-04-01/Accounts/{AC}/Recordings/{RE}.wav`` with the account's Basic auth —
the URL is built from our settings and the (checked) sid, never taken from the callback, so a forged or
odd ``RecordingUrl`` cannot make the worker fetch anything else. Twilio answers that with a redirect to
its media host; httpx follows it and drops the Authorization header when the host changes.

The download streams into the store (:mod:`prosaas_common.storage`; a partial file never becomes
visible), then ``calls.recording_path`` is set. Idempotent: a call that already has its path is
skipped, and a recording already in the store (stored by a try that died before its commit) is only
linked. A 404 right after ``completed`` (the media is not ready yet), 429, 5xx, 401/403 (our credentials)
and network errors are retried with a growing delay; any other refusal is logged and gives up.
"""

from __future__ import annotations

import re
from typing import Final

import httpx
from arq import Retry
from sqlalchemy import select, update

from prosaas_common.db import unit_of_work
from prosaas_common.dns import is_dns_error
from prosaas_common.jobs import JobName
from prosaas_common.logging import get_logger
from prosaas_common.models import Call
from prosaas_common.storage import RecordingStore, StorageError, open_store, recording_key
from prosaas_common.twilio_api import API_VERSION
from prosaas_worker.context import JobContext, current_try, get_resources
from prosaas_worker.registry import JobSpec, job
from prosaas_worker.settings import WorkerConfig

log = get_logger("prosaas.worker.recordings")

MAX_TRIES: Final = 8
# Delay before the next try after try N failed (N = 1, 2, 3, 4, then the cap).
RETRY_DELAYS_S: Final = (15.0, 60.0, 120.0, 300.0, 600.0)
RETRYABLE_STATUS: Final = frozenset({401, 403, 404, 408, 409, 425, 429})
DOWNLOAD_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
RECORDING_SID = re.compile(r"^RE[0-9A-Za-z]{32}$")


class TransientDownloadError(Exception):
    """Worth another try later (the media not ready yet, Twilio busy, the network)."""


class RefusedDownload(Exception):
    """Twilio refused the download for good (another 4xx)."""


def retry_delay(job_try: int) -> float:
    return RETRY_DELAYS_S[min(max(job_try, 1), len(RETRY_DELAYS_S)) - 1]


def media_path(account_sid: str, recording_sid: str) -> str:
    return f"/{API_VERSION}/Accounts/{account_sid}/Recordings/{recording_sid}.wav"


def twilio_client(settings: WorkerConfig) -> httpx.AsyncClient:
    assert settings.twilio_account_sid is not None
    assert settings.twilio_auth_token is not None
    return httpx.AsyncClient(
        base_url=settings.twilio_api_base_url,
        auth=(settings.twilio_account_sid, settings.twilio_auth_token.get_secret_value()),
        timeout=DOWNLOAD_TIMEOUT,
        follow_redirects=True,
    )


async def download(settings: WorkerConfig, recording_sid: str, store: RecordingStore, key: str) -> int:
    """Stream the recording's WAV into ``store`` under ``key``; the bytes written."""
    assert settings.twilio_account_sid is not None
    try:
        async with (
            twilio_client(settings) as client,
            client.stream("GET", media_path(settings.twilio_account_sid, recording_sid)) as response,
        ):
            if response.status_code != 200:
                await response.aread()
                detail = f"HTTP {response.status_code}: {response.text[:200]}"
                if response.status_code in RETRYABLE_STATUS or response.status_code >= 500:
                    raise TransientDownloadError(detail)
                raise RefusedDownload(detail)
            written = await store.write(key, response.aiter_bytes())
    except httpx.HTTPError as exc:
        if is_dns_error(exc):
            raise  # the worker's DNS policy (instrument) defers it
        raise TransientDownloadError(f"{type(exc).__name__}: {exc}"[:300]) from exc
    if written == 0:  # never link an empty file as the call's recording
        await store.delete(key)
        raise TransientDownloadError("empty recording")
    return written


async def delete_at_twilio(settings: WorkerConfig, recording_sid: str) -> None:
    """Best effort: the recording is ours now; a failure leaves it at Twilio (WARNING)."""
    assert settings.twilio_account_sid is not None
    path = f"/{API_VERSION}/Accounts/{settings.twilio_account_sid}/Recordings/{recording_sid}.json"
    try:
        async with twilio_client(settings) as client:
            response = await client.delete(path)
        if response.status_code not in (204, 404):
            raise RuntimeError(f"HTTP {response.status_code}")
    except (httpx.HTTPError, RuntimeError) as exc:
        log.warning("recording.delete_at_twilio_failed", recording_sid=recording_sid, error=str(exc)[:200])


async def fetch_recording(ctx: JobContext, call_sid: str, recording_sid: str) -> str:
    """Returns ``stored``, ``linked`` (was in the store already), ``skipped`` (the call has its
    recording), ``missing`` (no such call), ``invalid``, ``unconfigured`` or ``refused``; raises
    ``Retry`` after a transient failure."""
    resources = get_resources(ctx)
    settings = resources.settings
    if not RECORDING_SID.match(recording_sid):
        log.warning("recording.invalid_sid", call_sid=call_sid[:64], recording_sid=recording_sid[:64])
        return "invalid"
    async with resources.session_factory() as db:
        call = await db.scalar(select(Call).where(Call.call_sid == call_sid))
    if call is None:
        log.debug("recording.call_missing", call_sid=call_sid)
        return "missing"
    if call.recording_path is not None:
        log.debug("recording.skipped", call_sid=call_sid, path=call.recording_path)
        return "skipped"
    if not settings.twilio_configured:
        log.warning("recording.unconfigured", call_sid=call_sid, reason="no Twilio account on the worker")
        return "unconfigured"
    store = open_store(settings)
    key = recording_key(call.business_id, call.call_sid)
    outcome = "linked"
    try:
        size = await store.size(key)
        if size is None:
            size = await download(settings, recording_sid, store, key)
            outcome = "stored"
    except RefusedDownload as exc:
        log.warning("recording.refused", call_sid=call_sid, recording_sid=recording_sid, error=str(exc))
        return "refused"
    except (TransientDownloadError, StorageError) as exc:
        raise Retry(defer=retry_delay(current_try(ctx))) from exc
    async with unit_of_work(resources.session_factory) as db:
        linked = await db.execute(
            update(Call)
            .where(Call.id == call.id, Call.recording_path.is_(None))
            .values(recording_path=key, recording_sid=recording_sid)
        )
    if not getattr(linked, "rowcount", 1):
        return "skipped"  # a concurrent run linked it first
    log.info(
        "recording.stored",
        call_sid=call_sid,
        business_id=call.business_id,
        recording_sid=recording_sid,
        bytes=size,
        storage=store.kind,
        outcome=outcome,
    )
    if settings.recordings_delete_from_twilio:
        await delete_at_twilio(settings, recording_sid)
    return outcome


JOBS: tuple[JobSpec, ...] = (
    job(fetch_recording, name=JobName.CALLS_FETCH_RECORDING, max_tries=MAX_TRIES, timeout_s=900),
)
