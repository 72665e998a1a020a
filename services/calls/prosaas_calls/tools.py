"""The tools the phone agent can call, on the same domain code as the tenant API.

``check_availability`` reads the business's default calendar through the availability engine,
``book_appointment`` books through ``scheduling.booking`` (the exclusion constraint decides races; the
appointment lands on the lead's timeline and its events plan the automations), ``save_lead_info``
writes the caller's lead through ``LeadWriter`` (one lead per phone), ``transfer_call`` asks the session
to hand the call to the business's human number once the agent's "transferring you" was heard (the
call runner redirects it with ``<Dial>``), ``end_call`` asks the session to hang up once the goodbye was
heard. Every failure becomes a short sentence the agent can say — a tool
never ends the call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from email.utils import parseaddr
from typing import Any

from arq.connections import ArqRedis
from babel.dates import format_skeleton, format_time
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from prosaas_calls.providers.base import ToolSpec
from prosaas_common.db import unit_of_work
from prosaas_common.leads.writer import LeadWriter
from prosaas_common.logging import get_logger
from prosaas_common.messaging.planner import business_locale, plain_spaces
from prosaas_common.models import Business, BusinessSettings, Lead
from prosaas_common.scheduling.availability import load_calendar_view, zone
from prosaas_common.scheduling.booking import SlotTaken, UnknownCalendar, book_appointment

log = get_logger("prosaas.calls.tools")

SLOTS_OFFERED = 3
SEARCH_DAYS = 7
NOT_AVAILABLE = "I'm sorry, I can't check the calendar right now."
TAKEN = "I'm sorry, that time was just taken. Shall I look for another one?"
NOT_FREE = "That time is not free. Shall I suggest the nearest free times?"

TOOL_SPECS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "check_availability",
        "Free appointment times, earliest first. Give a date (YYYY-MM-DD) the caller asked for, or none.",
        {"type": "object", "properties": {"date": {"type": "string", "description": "YYYY-MM-DD"}}},
    ),
    ToolSpec(
        "book_appointment",
        "Book one of the free times check_availability returned (its 'start' value).",
        {
            "type": "object",
            "properties": {"start": {"type": "string"}, "name": {"type": "string"}},
            "required": ["start"],
        },
    ),
    ToolSpec(
        "save_lead_info",
        "Save what the caller told about themselves.",
        {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "email": {"type": "string"},
                "reason": {"type": "string"},
                "notes": {"type": "string"},
            },
        },
    ),
    ToolSpec(
        "transfer_call",
        "Transfer the caller to a person at the business. Tell the caller you are transferring them.",
        {"type": "object", "properties": {"reason": {"type": "string"}}},
    ),
    ToolSpec("end_call", "End the call after saying goodbye.", {"type": "object", "properties": {}}),
)
NO_TRANSFER = "I'm sorry, I can't transfer calls right now, but I can take a message for the team."


class CallTools:
    """The tool runner of one call (a :data:`prosaas_calls.session.ToolRunner`)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        pool: Callable[[], Awaitable[ArqRedis]],
        *,
        business_id: int,
        call_sid: str,
        caller: str | None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._sessions = sessions
        self._pool = pool
        self.business_id = business_id
        self.call_sid = call_sid
        self.caller = caller if caller and caller.startswith("+") else None
        self._clock = clock
        self.hangup_requested = False
        self.transfer_to: str | None = None
        self.booked_appointment_id: int | None = None

    def requested_end(self) -> str | None:
        """How the agent asked the call to end, if it did (see :class:`prosaas_calls.session.CallSession`)."""
        if self.transfer_to is not None:
            return "transferred"
        return "agent_ended" if self.hangup_requested else None

    async def __call__(self, name: str, arguments: Mapping[str, Any]) -> Mapping[str, Any]:
        handlers = {
            "check_availability": self.check_availability,
            "book_appointment": self.book_appointment,
            "save_lead_info": self.save_lead_info,
            "transfer_call": self.transfer_call,
            "end_call": self.end_call,
        }
        handler = handlers.get(name)
        if handler is None:
            return {"error": "I can't do that on this call."}
        return await handler(arguments)

    async def _business(self, db: AsyncSession) -> tuple[Business, int]:
        business = await db.get(Business, self.business_id)
        assert business is not None
        minutes = await db.scalar(
            select(BusinessSettings.appointment_duration_min).where(
                BusinessSettings.business_id == self.business_id
            )
        )
        return business, int(minutes or 30)

    def _spoken(self, business: Business, moment: datetime) -> str:
        local = moment.astimezone(zone(business.timezone))
        locale = business_locale(business)
        day = format_skeleton("MMMMEEEEd", local, locale=locale)
        return plain_spaces(f"{day} at {format_time(local, 'short', locale=locale)}")

    async def _free(
        self, db: AsyncSession, start: datetime, end: datetime
    ) -> tuple[Business, list[datetime]]:
        business, minutes = await self._business(db)
        view = await load_calendar_view(db, self.business_id, None, start, end)
        slots = view.free_slots(start, end, timedelta(minutes=minutes), self._clock())
        return business, [slot.starts_at for slot in slots]

    async def check_availability(self, arguments: Mapping[str, Any]) -> Mapping[str, Any]:
        now = self._clock()
        try:
            async with self._sessions() as db:
                business, _ = await self._business(db)
                start, end = now, now + timedelta(days=SEARCH_DAYS)
                asked = str(arguments.get("date") or "").strip()
                if asked:
                    try:
                        day = date.fromisoformat(asked)
                    except ValueError:
                        return {"error": "Which day would you like? Please say the date."}
                    tz = zone(business.timezone)
                    start = max(now, datetime.combine(day, time.min, tz))
                    end = datetime.combine(day + timedelta(days=1), time.min, tz)
                business, starts = await self._free(db, start, end)
        except UnknownCalendar:
            return {"error": NOT_AVAILABLE}
        offered = starts[:SLOTS_OFFERED]
        if not offered:
            return {"slots": [], "message": "There are no free times then."}
        return {"slots": [{"start": s.isoformat(), "spoken": self._spoken(business, s)} for s in offered]}

    async def book_appointment(self, arguments: Mapping[str, Any]) -> Mapping[str, Any]:
        try:
            starts_at = datetime.fromisoformat(str(arguments.get("start", "")))
        except ValueError:
            return {"error": NOT_FREE}
        if starts_at.tzinfo is None:
            return {"error": NOT_FREE}
        try:
            async with unit_of_work(self._sessions) as db:
                business, free = await self._free(db, starts_at, starts_at + timedelta(minutes=1))
                if starts_at not in free:
                    return {"error": NOT_FREE}
                _, minutes = await self._business(db)
                lead = await self._lead(db, {"name": arguments.get("name")})
                appointment = await book_appointment(
                    db,
                    self.business_id,
                    None,
                    lead.id if lead else None,
                    starts_at,
                    timedelta(minutes=minutes),
                    None,
                    self._pool,
                    self.call_sid,
                    title="Booked by phone",
                    via="call",
                )
                self.booked_appointment_id = appointment.id
                spoken = self._spoken(business, starts_at)
        except SlotTaken:
            return {"error": TAKEN}
        except UnknownCalendar:
            return {"error": NOT_AVAILABLE}
        log.debug("call.booked", call_sid=self.call_sid, appointment_id=self.booked_appointment_id)
        return {"booked": True, "start": starts_at.isoformat(), "spoken": spoken}

    async def _lead(self, db: AsyncSession, arguments: Mapping[str, Any]) -> Lead | None:
        """The caller's lead (created or completed from what they said); None without a caller number."""
        if self.caller is None:
            return None
        values: dict[str, Any] = {"phone": self.caller, "source": "call"}
        name = " ".join(str(arguments.get("name") or "").split())
        if name:
            first, _, last = name.partition(" ")
            values |= {"first_name": first[:100], "last_name": last[:100]}
        address = parseaddr(str(arguments.get("email") or ""))[1].strip().lower()
        if "@" in address and "." in address.rpartition("@")[2]:
            values["email"] = address[:320]
        reason = " ".join(str(arguments.get("reason") or "").split())
        if reason:
            values["reason"] = reason[:2000]
        writer = LeadWriter(db, self.business_id, actor_user_id=None, via="call", pool=self._pool)
        lead, _ = await writer.upsert(values)
        notes = str(arguments.get("notes") or "").strip()
        if notes:
            await writer.add_note(lead, notes[:5000])
        return lead

    async def save_lead_info(self, arguments: Mapping[str, Any]) -> Mapping[str, Any]:
        if self.caller is None:
            return {"error": "I can't save details for a hidden number, but I'll pass the message on."}
        async with unit_of_work(self._sessions) as db:
            lead = await self._lead(db, arguments)
            lead_id = lead.id if lead else None
        return {"saved": True, "lead_id": lead_id}

    async def transfer_call(self, arguments: Mapping[str, Any]) -> Mapping[str, Any]:
        async with self._sessions() as db:
            number = await db.scalar(
                select(BusinessSettings.transfer_number).where(
                    BusinessSettings.business_id == self.business_id
                )
            )
        if not number:
            return {"error": NO_TRANSFER}
        self.transfer_to = number
        log.debug("call.transfer_requested", call_sid=self.call_sid)
        return {
            "ok": True,
            "message": "Tell the caller you are transferring them now; the call moves after that.",
        }

    async def end_call(self, arguments: Mapping[str, Any]) -> Mapping[str, Any]:
        self.hangup_requested = True
        return {"ok": True, "message": "Say a short goodbye; the call ends once it was heard."}
