"""Outbound calls: ``calls.place_outbound(call_id)`` (one call the api queued) and
``calls.run_outbound(run_id, seq)`` (a bulk run over a selection of leads), both on the ``default`` queue.

Both place calls through :func:`~prosaas_worker.calls_outbound.dialer.place_call`, so neither exceeds the
business's outbound semaphore nor calls anyone twice. A single call without a free slot is retried
(``Retry(defer=…)``) and marked ``failed`` (``no_outbound_slot``) on its last try. A run never sleeps:
when the semaphore is full it ends its job and queues step ``seq + 1`` ``RUN_WAIT_S`` later (job id
``outbound-run:{run}:{seq + 1}``, the number kept in the run's ``wakeups``), so a run has exactly one job
alive and stopping it takes effect at its next step.
"""

from __future__ import annotations

from datetime import timedelta

from arq import Retry

from prosaas_common.db import unit_of_work
from prosaas_common.jobs import JobName, Queue, enqueue_after_commit
from prosaas_common.logging import get_logger
from prosaas_common.models import OutboundCallRun
from prosaas_common.outbound_calls import run_job_id
from prosaas_common.outbound_slots import OutboundSlots
from prosaas_worker.calls_outbound import dialer, runs
from prosaas_worker.calls_outbound.twilio_calls import TwilioCalls
from prosaas_worker.context import JobContext, WorkerResources, current_try, get_resources, job_pool
from prosaas_worker.registry import JobSpec, job

log = get_logger("prosaas.worker.outbound")
PLACE_MAX_TRIES = 30
PLACE_WAIT_S = 20.0  # a single call waiting for a slot: up to PLACE_MAX_TRIES times this
RUN_WAIT_S = 5.0  # a run waiting for a slot checks again this often
RUN_RETRY_S = 30.0  # after a transient Twilio failure
STEPS_PER_JOB = 500  # a long run continues in a fresh job now and then


class TwilioNotConfigured(RuntimeError):
    """TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN are not set: no call can be placed."""


def twilio_calls(resources: WorkerResources) -> TwilioCalls:
    settings = resources.settings
    if not settings.twilio_configured:
        raise TwilioNotConfigured("TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN must be set to place calls")
    assert settings.twilio_account_sid is not None
    assert settings.twilio_auth_token is not None
    return TwilioCalls(
        base_url=settings.twilio_api_base_url,
        account_sid=settings.twilio_account_sid,
        auth_token=settings.twilio_auth_token.get_secret_value(),
        public_host=settings.public_host,
        timeout=settings.messages_http_timeout,
    )


async def place_outbound(ctx: JobContext, call_id: int) -> str:
    resources = get_resources(ctx)
    twilio = twilio_calls(resources)
    try:
        outcome = await dialer.place_call(
            resources.session_factory, OutboundSlots(resources.redis), twilio, call_id
        )
    finally:
        await twilio.aclose()
    if outcome in (dialer.Outcome.WAITING, dialer.Outcome.RETRY):
        if current_try(ctx) >= PLACE_MAX_TRIES:
            reason = "no_outbound_slot" if outcome is dialer.Outcome.WAITING else "dial_failed"
            async with unit_of_work(resources.session_factory) as db:
                await dialer.record_failed(db, call_id, None, reason)
            log.info("call.outbound_gave_up", call_id=call_id, reason=reason)
            return "gave_up"
        raise Retry(defer=PLACE_WAIT_S if outcome is dialer.Outcome.WAITING else RUN_RETRY_S)
    return outcome.value


async def schedule_next(ctx: JobContext, run_id: int, seq: int, delay_s: float) -> None:
    resources = get_resources(ctx)
    async with unit_of_work(resources.session_factory) as db:
        run = await runs.locked_run(db, run_id)
        if run is None:
            return
        run.wakeups = seq + 1
        enqueue_after_commit(
            db,
            job_pool(ctx),
            JobName.CALLS_RUN_OUTBOUND,
            run_id,
            seq + 1,
            queue=Queue.DEFAULT,
            job_id=run_job_id(run_id, seq + 1),
            defer_by=timedelta(seconds=delay_s),
        )


async def run_outbound(ctx: JobContext, run_id: int, seq: int = 0) -> str:
    """Returns the run's status when it finished, or ``waiting`` / ``continued`` (a next step is queued)."""
    resources = get_resources(ctx)
    slots = OutboundSlots(resources.redis)
    twilio = twilio_calls(resources)
    try:
        for _ in range(STEPS_PER_JOB):
            async with unit_of_work(resources.session_factory) as db:
                step = await runs.next_step(db, slots, run_id)
            if isinstance(step, runs.Finished):
                log.info("outbound_run.finished", run_id=run_id, status=step.status)
                return step.status
            if isinstance(step, runs.Wait):
                await schedule_next(ctx, run_id, seq, RUN_WAIT_S)
                return "waiting"
            if isinstance(step, runs.Dial):
                outcome = await dialer.place_call(resources.session_factory, slots, twilio, step.call_id)
                if outcome in (dialer.Outcome.WAITING, dialer.Outcome.RETRY):
                    delay = RUN_WAIT_S if outcome is dialer.Outcome.WAITING else RUN_RETRY_S
                    await schedule_next(ctx, run_id, seq, delay)
                    return "waiting"
    finally:
        await twilio.aclose()
    await schedule_next(ctx, run_id, seq, 0)
    return "continued"


async def progress(resources: WorkerResources, run_id: int) -> OutboundCallRun | None:
    """The run as it is now (for tests and the runbook)."""
    async with resources.session_factory() as db:
        return await db.get(OutboundCallRun, run_id)


JOBS: tuple[JobSpec, ...] = (
    job(place_outbound, name=JobName.CALLS_PLACE_OUTBOUND, max_tries=PLACE_MAX_TRIES, timeout_s=120),
    job(run_outbound, name=JobName.CALLS_RUN_OUTBOUND, max_tries=5, timeout_s=3600),
)
