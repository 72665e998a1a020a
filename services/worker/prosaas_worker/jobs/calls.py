"""After a call: ``calls.finalize(call_sid)`` on the ``high`` queue (enqueued by the calls service when
Twilio reports the call's terminal status).

It writes the call's summary (extractive: what the caller said first and what was booked — a model-written
summary plugs in here when an API key is configured), makes sure the caller has a lead (one per phone,
through ``LeadWriter``) and links it, puts the call on the lead's timeline and records ``call.completed``
(the business's signed webhook goes out from that event). The call row is locked and a written summary
marks it finalized, so a repeated or concurrent job does nothing the second time.
"""

from __future__ import annotations

from sqlalchemy import select

from prosaas_common.db import unit_of_work
from prosaas_common.events import record_event
from prosaas_common.jobs import JobName
from prosaas_common.leads.writer import LeadWriter
from prosaas_common.logging import get_logger
from prosaas_common.models import Appointment, Call, CallTurn, Lead
from prosaas_worker.context import JobContext, get_resources, job_pool
from prosaas_worker.registry import JobSpec, job

log = get_logger("prosaas.worker.calls")
CALLER_TURNS_IN_SUMMARY = 3
SUMMARY_MAX = 1000


def extractive_summary(caller_said: list[str], booked: list[Appointment], duration_s: int | None) -> str:
    """A short, model-free account of the call: the caller's first words and what was booked."""
    parts: list[str] = []
    if caller_said:
        parts.append(
            "Caller said: " + " / ".join(text.strip() for text in caller_said[:CALLER_TURNS_IN_SUMMARY])
        )
    for appointment in booked:
        parts.append(f"Booked an appointment for {appointment.starts_at.isoformat()}.")
    if not parts:
        parts.append("No conversation was recorded.")
    if duration_s is not None:
        parts.append(f"Duration {duration_s} s.")
    return " ".join(parts)[:SUMMARY_MAX]


async def finalize(ctx: JobContext, call_sid: str) -> str:
    """Returns ``finalized``, ``skipped`` (done before) or ``missing``."""
    resources = get_resources(ctx)
    pool = job_pool(ctx)

    async with unit_of_work(resources.session_factory) as db:
        call = await db.scalar(select(Call).where(Call.call_sid == call_sid).with_for_update())
        if call is None:
            log.debug("call.finalize_missing", call_sid=call_sid)
            return "missing"
        if call.summary is not None:
            return "skipped"
        caller_said = list(
            await db.scalars(
                select(CallTurn.text)
                .where(CallTurn.call_id == call.id, CallTurn.speaker == "caller")
                .order_by(CallTurn.offset_ms, CallTurn.id)
                .limit(CALLER_TURNS_IN_SUMMARY)
            )
        )
        booked = list(
            await db.scalars(
                select(Appointment)
                .where(Appointment.business_id == call.business_id, Appointment.call_sid == call.call_sid)
                .order_by(Appointment.starts_at)
            )
        )
        call.summary = extractive_summary(caller_said, booked, call.duration_s)
        writer = LeadWriter(db, call.business_id, actor_user_id=None, via="call", pool=pool)
        lead: Lead | None = await db.get(Lead, call.lead_id) if call.lead_id is not None else None
        if lead is None and call.from_number.startswith("+"):
            lead, _ = await writer.upsert({"phone": call.from_number, "source": "call"})
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
                "appointment_ids": [appointment.id for appointment in booked],
            },
        )
    log.debug("call.finalized", call_sid=call_sid)
    return "finalized"


JOBS: tuple[JobSpec, ...] = (job(finalize, name=JobName.CALLS_FINALIZE, max_tries=5, timeout_s=120),)
