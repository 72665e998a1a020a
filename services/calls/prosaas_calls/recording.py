"""Call recordings on the calls side: starting them, and Twilio's ``POST /webhook/recording_status``.

* The router's lifespan opens one :class:`~prosaas_calls.twilio_rest.TwilioVoice` per process
  (``app.state.twilio_voice``). When a media stream starts for a business with ``recording_enabled``
  (the call runner read it with the call), :func:`start_recording_soon` starts a task that asks Twilio
  to record the call. It runs beside the call and never delays its audio; a failure is one WARNING and
  the call goes on.
* Twilio then posts the recording's status. A signed callback for a known call stores the recording sid;
  ``completed`` enqueues ``calls.fetch_recording`` (worker) after the commit under the job id
  ``recording-fetch:{RecordingSid}``, so Twilio's retries of the callback do not enqueue it twice. An
  unknown call, a malformed sid or a call whose recording is already stored answer 204 and change
  nothing (a non-2xx answer would only make Twilio retry). A forged signature is 403 before anything
  is read.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Request, Response
from sqlalchemy import select, update

from prosaas_calls.twilio_auth import signed_form
from prosaas_calls.twilio_rest import TwilioError, TwilioVoice
from prosaas_common.jobs import JobName, enqueue_after_commit
from prosaas_common.logging import get_logger
from prosaas_common.models import Call
from prosaas_common.web import DbSession, ServiceResources, resources_of

log = get_logger("prosaas.calls.recording")

CALLBACK_PATH = "/webhook/recording_status"
RECORDING_SID = re.compile(r"^RE[0-9A-Za-z]{32}$")


def fetch_job_id(recording_sid: str) -> str:
    return f"recording-fetch:{recording_sid}"


@asynccontextmanager
async def twilio_voice_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The process's Twilio Voice client (``app.state.twilio_voice``, None without Twilio credentials),
    opened after the app's resources and closed before them; recording tasks still running at shutdown
    are cancelled."""
    resources: ServiceResources = app.state.resources
    client = TwilioVoice.from_settings(resources.settings)
    tasks: set[asyncio.Task[None]] = set()
    app.state.twilio_voice, app.state.recording_tasks = client, tasks
    try:
        yield
    finally:
        app.state.twilio_voice = None
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if client is not None:
            await client.aclose()


router = APIRouter(tags=["twilio"], lifespan=twilio_voice_lifespan)


def start_recording_soon(app: FastAPI, call_sid: str, business_id: int) -> asyncio.Task[None] | None:
    """Start recording ``call_sid`` in the background (its business wants recordings); None when there
    is no Twilio client (one DEBUG line)."""
    client: TwilioVoice | None = getattr(app.state, "twilio_voice", None)
    if client is None:
        log.debug("recording.skipped", call_sid=call_sid, reason="twilio not configured")
        return None
    resources: ServiceResources = app.state.resources
    task = asyncio.create_task(
        start_recording(resources, client, call_sid, business_id), name=f"record:{call_sid}"
    )
    tasks: set[asyncio.Task[None]] = app.state.recording_tasks
    tasks.add(task)  # a strong reference until it ends (the loop keeps only weak ones)
    task.add_done_callback(tasks.discard)
    return task


async def start_recording(
    resources: ServiceResources, client: TwilioVoice, call_sid: str, business_id: int
) -> None:
    try:
        callback = f"https://{resources.settings.public_host}{CALLBACK_PATH}"
        recording_sid = await client.start_recording(call_sid, callback)
    except TwilioError as exc:
        log.warning(
            "recording.start_failed",
            call_sid=call_sid,
            business_id=business_id,
            status=exc.status,
            code=exc.code,
            error=exc.message,
        )
        return
    except Exception as exc:  # never let a recording problem surface in the call
        log.warning(
            "recording.start_failed", call_sid=call_sid, business_id=business_id, error=repr(exc)[:300]
        )
        return
    log.debug("recording.started", call_sid=call_sid, business_id=business_id, recording_sid=recording_sid)
    if RECORDING_SID.match(recording_sid):
        try:
            async with resources.sessions.begin() as db:
                await db.execute(
                    update(Call)
                    .where(Call.call_sid == call_sid, Call.recording_sid.is_(None))
                    .values(recording_sid=recording_sid)
                )
        except Exception as exc:  # the status callback stores it too
            log.debug("recording.sid_not_saved", call_sid=call_sid, error=repr(exc)[:300])


@router.post(CALLBACK_PATH, status_code=204, operation_id="twilio_recording_status", include_in_schema=False)
async def recording_status(request: Request, db: DbSession) -> Response:
    resources = resources_of(request)
    params = await signed_form(request, resources.settings)
    call_sid, recording_sid = params.get("CallSid", ""), params.get("RecordingSid", "")
    status = params.get("RecordingStatus", "").lower()
    if not RECORDING_SID.match(recording_sid):
        log.debug("recording_status.ignored", reason="no recording sid", call_sid=call_sid[:64])
        return Response(status_code=204)
    call = await db.scalar(select(Call).where(Call.call_sid == call_sid).with_for_update())
    if call is None:
        log.debug("recording_status.unknown_call", call_sid=call_sid[:64], recording_sid=recording_sid)
        return Response(status_code=204)
    if call.recording_path is not None:
        log.debug("recording_status.already_stored", call_sid=call_sid, recording_sid=recording_sid)
        return Response(status_code=204)
    call.recording_sid = recording_sid
    if status == "completed":
        enqueue_after_commit(
            db,
            resources.job_pool,
            JobName.CALLS_FETCH_RECORDING,
            call.call_sid,
            recording_sid,
            job_id=fetch_job_id(recording_sid),
        )
        log.debug("recording_status.completed", call_sid=call_sid, recording_sid=recording_sid)
    elif status in ("absent", "failed"):
        log.info(
            "recording.not_available",
            call_sid=call_sid,
            business_id=call.business_id,
            recording_sid=recording_sid,
            status=status,
            error_code=params.get("ErrorCode", "")[:10] or None,
        )
    return Response(status_code=204)
