"""After a call: ``calls.finalize(call_sid)`` on the ``high`` queue (enqueued by the calls service when
Twilio reports the call's terminal status).

It writes the call's summary (model-written when ``OPENAI_API_KEY`` is set, else extractive — see
:mod:`prosaas_worker.call_summary`; which one is recorded as ``calls.usage["summary_source"]``), makes sure
the caller has a lead (one per phone, through ``LeadWriter``) and links it, puts the call on the lead's
timeline and records ``call.completed`` (the business's signed webhook goes out from that event).

The model is asked *before* the call row is locked: the turns are read in a short read-only transaction,
the HTTP request runs with no transaction open, then the row is locked and written only if it has no
summary yet. So a repeated or concurrent job does nothing the second time (at worst a concurrent one
asked the model for nothing), and no row lock is held across a request that may take seconds.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from prosaas_common.db import unit_of_work
from prosaas_common.events import record_event
from prosaas_common.jobs import JobName
from prosaas_common.leads.writer import LeadWriter
from prosaas_common.logging import get_logger
from prosaas_common.models import Appointment, Business, Call, CallDirection, CallTurn, Lead
from prosaas_worker.call_summary import CallFacts, Turn, summarise
from prosaas_worker.context import JobContext, get_resources, job_pool
from prosaas_worker.registry import JobSpec, job

log = get_logger("prosaas.worker.calls")
MAX_TURNS_READ = 2000  # a summary's transcript is capped far below this anyway


async def read_facts(db: AsyncSession, call: Call) -> tuple[CallFacts, list[int]]:
    """What the summary is written from, and the ids of the appointments booked in the call."""
    turns = (
        await db.execute(
            select(CallTurn.speaker, CallTurn.text)
            .where(CallTurn.call_id == call.id)
            .order_by(CallTurn.offset_ms, CallTurn.id)
            .limit(MAX_TURNS_READ)
        )
    ).all()
    booked = (
        await db.execute(
            select(Appointment.id, Appointment.starts_at)
            .where(Appointment.business_id == call.business_id, Appointment.call_sid == call.call_sid)
            .order_by(Appointment.starts_at)
        )
    ).all()
    business = (
        await db.execute(select(Business.name, Business.timezone).where(Business.id == call.business_id))
    ).one()
    facts = CallFacts(
        call_sid=call.call_sid,
        business_name=business.name,
        timezone=business.timezone,
        direction=call.direction,
        duration_s=call.duration_s,
        turns=[Turn(speaker, text) for speaker, text in turns],
        booked=[starts_at for _, starts_at in booked],
    )
    return facts, [appointment_id for appointment_id, _ in booked]


async def finalize(ctx: JobContext, call_sid: str) -> str:
    """Returns ``finalized``, ``skipped`` (done before) or ``missing``."""
    resources = get_resources(ctx)
    pool = job_pool(ctx)

    async with resources.session_factory() as db:  # read only: no lock held while the model writes
        call = await db.scalar(select(Call).where(Call.call_sid == call_sid))
        if call is None:
            log.debug("call.finalize_missing", call_sid=call_sid)
            return "missing"
        if call.summary is not None:
            return "skipped"
        facts, appointment_ids = await read_facts(db, call)

    summary = await summarise(resources.settings, facts)

    async with unit_of_work(resources.session_factory) as db:
        call = await db.scalar(select(Call).where(Call.call_sid == call_sid).with_for_update())
        if call is None:
            return "missing"
        if call.summary is not None:
            return "skipped"  # a concurrent run wrote it while the model was busy
        call.summary = summary.text
        call.usage = {**(call.usage or {}), "summary_source": summary.source}
        writer = LeadWriter(db, call.business_id, actor_user_id=None, via="call", pool=pool)
        lead: Lead | None = await db.get(Lead, call.lead_id) if call.lead_id is not None else None
        other_party = call.to_number if call.direction == CallDirection.OUTBOUND else call.from_number
        if lead is None and other_party.startswith("+"):
            lead, _ = await writer.upsert({"phone": other_party, "source": "call"})
            call.lead_id = lead.id
        if lead is not None:
            await writer.activity(
                lead, "call", f"Call ({call.direction}): {call.summary[:200]}", {"call_sid": call.call_sid}
            )
        await record_event(
            db,
            pool,
            call.business_id,
            "call.completed",
            {
                "call_sid": call.call_sid,
                "direction": call.direction,
                "from": call.from_number,
                "to": call.to_number,
                "status": call.status,
                "duration_s": call.duration_s,
                "lead_id": call.lead_id,
                "summary": call.summary,
                "summary_source": summary.source,
                "appointment_ids": appointment_ids,
            },
        )
    log.debug("call.finalized", call_sid=call_sid, summary_source=summary.source)
    return "finalized"


JOBS: tuple[JobSpec, ...] = (job(finalize, name=JobName.CALLS_FINALIZE, max_tries=5, timeout_s=120),)
