"""Planning messages to leads from appointments and follow-up rules.

Both planners compare what *should* be scheduled, computed from the current rows, with the ``scheduled``
messages that exist, then insert, move or cancel. That makes them idempotent and order-independent: the
worker runs them for every ``appointment.*`` / ``lead.*`` event, and a duplicated or late event plans the
same thing again. Each planned message has a dedup key naming what it is for:

* ``appointment:{id}:automation:{automation_id}`` for on-booking sends (never re-sent on reschedule);
* ``appointment:{id}:automation:{automation_id}:{anchor epoch}`` for before-start / after-end sends, so a
  rescheduled appointment gets its reminder again for the new time while the old one, if already sent, is
  kept; a pending one is moved (its key, time and text updated in place);
* ``followup:{rule_id}:step:{n}:lead:{lead_id}:{entered epoch ms}``: one per entry into the status.

Sends whose time is more than :data:`LATE_LIMIT` in the past when planned are skipped (a backlog must
not message a lead about something long gone).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import format_skeleton, format_time
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from prosaas_common.messaging.templates import render
from prosaas_common.models import (
    Appointment,
    AppointmentStatus,
    AutomationTrigger,
    Business,
    BusinessPhoneNumber,
    Calendar,
    FollowupRule,
    Lead,
    LeadStatus,
    MessageAutomation,
    MessageChannelName,
    MessageStatus,
    OutboundMessage,
)

LATE_LIMIT = timedelta(hours=1)
LIVE_APPOINTMENT = (AppointmentStatus.SCHEDULED.value, AppointmentStatus.CONFIRMED.value)
# Channels that can send today; a rule on another channel plans nothing until it can.
SENDABLE_CHANNELS = (MessageChannelName.SMS.value,)


@dataclass(frozen=True)
class Planned:
    dedup_key: str
    send_at: datetime
    body: str
    channel: str
    automation_id: int | None = None
    followup_rule_id: int | None = None
    followup_step: int | None = None


@dataclass
class PlanResult:
    created: int = 0
    moved: int = 0
    cancelled: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.created or self.moved or self.cancelled)


def business_locale(business: Business) -> Locale:
    """The business's language in its region (``en`` + ``GB`` → 24-hour times), else the language."""
    for tag in (f"{business.locale}_{business.default_region}", business.locale, "en"):
        try:
            return Locale.parse(tag)
        except (UnknownLocaleError, ValueError):
            continue
    return Locale.parse("en")


def lead_values(lead: Lead, business: Business) -> dict[str, str]:
    full = " ".join(part for part in (lead.first_name, lead.last_name) if part)
    return {
        "first_name": lead.first_name,
        "last_name": lead.last_name,
        "full_name": full,
        "business_name": business.name,
        "phone": lead.phone or "",
    }


def plain_spaces(text: str) -> str:
    """CLDR puts (narrow) no-break spaces in dates and times ("2:30\u202fPM"); one such character moves
    a whole SMS from GSM-7 to UCS-2 encoding and halves its segment size."""
    return text.replace("\u202f", " ").replace("\u00a0", " ")


def appointment_values(
    appointment: Appointment, lead: Lead, business: Business, calendar_name: str
) -> dict[str, str]:
    zone = ZoneInfo(business.timezone)
    local = appointment.starts_at.astimezone(zone)
    locale = business_locale(business)
    return {
        **lead_values(lead, business),
        "date": plain_spaces(format_skeleton("MMMMEEEEd", local, locale=locale)),
        "time": plain_spaces(format_time(local, "short", locale=locale)),
        "calendar_name": calendar_name,
        "appointment_title": appointment.title,
    }


def epoch(moment: datetime, scale: int = 1) -> int:
    return int(moment.timestamp() * scale)


async def sending_number(db: AsyncSession, business_id: int) -> str | None:
    """The number messages of the business come from: its first phone number."""
    return await db.scalar(
        select(BusinessPhoneNumber.e164)
        .where(BusinessPhoneNumber.business_id == business_id)
        .order_by(BusinessPhoneNumber.id)
        .limit(1)
    )


def appointment_plan(
    appointment: Appointment,
    automations: Iterable[MessageAutomation],
    values: dict[str, str],
    now: datetime,
) -> list[Planned]:
    planned: list[Planned] = []
    for automation in automations:
        offset = timedelta(minutes=automation.offset_minutes)
        key = f"appointment:{appointment.id}:automation:{automation.id}"
        if automation.trigger == AutomationTrigger.BOOKED:
            send_at = appointment.created_at + offset
        elif automation.trigger == AutomationTrigger.BEFORE_START:
            send_at = appointment.starts_at - offset
            key = f"{key}:{epoch(appointment.starts_at)}"
            if appointment.starts_at <= now:
                continue
        else:
            send_at = appointment.ends_at + offset
            key = f"{key}:{epoch(appointment.ends_at)}"
        if send_at < now - LATE_LIMIT:
            continue
        planned.append(
            Planned(
                key,
                send_at,
                render(automation.template, values),
                automation.channel,
                automation_id=automation.id,
            )
        )
    return planned


async def plan_appointment(db: AsyncSession, appointment_id: int, now: datetime) -> PlanResult:
    """Bring the scheduled messages of one appointment in line with it and the business's automations."""
    appointment = await db.scalar(
        select(Appointment).where(Appointment.id == appointment_id).with_for_update()
    )
    if appointment is None:
        return PlanResult()
    lead = await db.get(Lead, appointment.lead_id) if appointment.lead_id is not None else None
    planned: list[Planned] = []
    if appointment.status in LIVE_APPOINTMENT and lead is not None and lead.phone:
        business = await db.get(Business, appointment.business_id)
        calendar = await db.get(Calendar, appointment.calendar_id)
        automations = await db.scalars(
            select(MessageAutomation)
            .where(
                MessageAutomation.business_id == appointment.business_id,
                MessageAutomation.is_active.is_(True),
                MessageAutomation.channel.in_(SENDABLE_CHANNELS),
            )
            .order_by(MessageAutomation.id)
        )
        assert business is not None
        values = appointment_values(appointment, lead, business, calendar.name if calendar else "")
        planned = appointment_plan(appointment, automations, values, now)
    existing = list(
        await db.scalars(select(OutboundMessage).where(OutboundMessage.appointment_id == appointment.id))
    )
    return await reconcile(
        db,
        existing,
        planned,
        slot=lambda message: message.automation_id,
        business_id=appointment.business_id,
        to_number=lead.phone if lead is not None else None,
        lead_id=appointment.lead_id,
        appointment_id=appointment.id,
    )


async def plan_followups(db: AsyncSession, lead_id: int, now: datetime) -> PlanResult:
    """Schedule the steps of the follow-up rules of the lead's current status (for this entry into it)
    and cancel the pending steps of any other status or earlier entry."""
    lead = await db.scalar(select(Lead).where(Lead.id == lead_id).with_for_update(key_share=True))
    if lead is None:
        return PlanResult()
    planned: list[Planned] = []
    if lead.phone:
        business = await db.get(Business, lead.business_id)
        status = await db.get(LeadStatus, lead.status_id)
        assert business is not None
        values = {**lead_values(lead, business), "status": status.name if status else ""}
        rules = await db.scalars(
            select(FollowupRule)
            .where(
                FollowupRule.business_id == lead.business_id,
                FollowupRule.status_id == lead.status_id,
                FollowupRule.is_active.is_(True),
                FollowupRule.channel.in_(SENDABLE_CHANNELS),
            )
            .order_by(FollowupRule.id)
        )
        entered = lead.status_changed_at
        for rule in rules:
            for number, step in enumerate(rule.steps, start=1):
                send_at = entered + timedelta(minutes=int(step["delay_minutes"]))
                if send_at < now - LATE_LIMIT:
                    continue
                planned.append(
                    Planned(
                        f"followup:{rule.id}:step:{number}:lead:{lead.id}:{epoch(entered, 1000)}",
                        send_at,
                        render(str(step["template"]), values),
                        rule.channel,
                        followup_rule_id=rule.id,
                        followup_step=number,
                    )
                )
    existing = list(
        await db.scalars(
            select(OutboundMessage).where(
                OutboundMessage.lead_id == lead.id, OutboundMessage.followup_rule_id.is_not(None)
            )
        )
    )
    return await reconcile(
        db,
        existing,
        planned,
        slot=lambda message: (message.followup_rule_id, message.followup_step),
        business_id=lead.business_id,
        to_number=lead.phone,
        lead_id=lead.id,
        appointment_id=None,
    )


async def reconcile(
    db: AsyncSession,
    existing: list[OutboundMessage],
    planned: list[Planned],
    *,
    slot: Callable[[OutboundMessage | Planned], Hashable],
    business_id: int,
    to_number: str | None,
    lead_id: int | None,
    appointment_id: int | None,
) -> PlanResult:
    """Move or cancel the scheduled rows of ``existing`` and insert the missing ``planned`` ones.

    ``slot`` maps a row or a plan to what it is for (the automation, or the rule and step): a scheduled
    row whose slot is still planned under another key/time/text is moved in place, unless that key was
    already used (sent) — then it is cancelled and the used key stands.
    """
    result = PlanResult()
    used_keys = {message.dedup_key for message in existing}
    wanted = {slot(plan): plan for plan in planned}
    for message in existing:
        if message.status != MessageStatus.SCHEDULED:
            continue
        plan = wanted.get(slot(message))
        if (
            plan is None
            or to_number is None
            or (plan.dedup_key != message.dedup_key and plan.dedup_key in used_keys)
        ):
            message.status = MessageStatus.CANCELLED.value
            result.cancelled += 1
            continue
        if (message.dedup_key, message.send_at, message.body, message.to_number) != (
            plan.dedup_key,
            plan.send_at,
            plan.body,
            to_number,
        ):
            message.dedup_key, message.send_at, message.body = plan.dedup_key, plan.send_at, plan.body
            message.to_number = to_number
            result.moved += 1
        used_keys.add(plan.dedup_key)
    missing = [plan for plan in planned if plan.dedup_key not in used_keys]
    if missing and to_number is not None:
        from_number = await sending_number(db, business_id)
        inserted = await db.scalars(
            insert(OutboundMessage)
            .values(
                [
                    {
                        "business_id": business_id,
                        "dedup_key": plan.dedup_key,
                        "channel": plan.channel,
                        "to_number": to_number,
                        "from_number": from_number,
                        "body": plan.body,
                        "send_at": plan.send_at,
                        "lead_id": lead_id,
                        "appointment_id": appointment_id,
                        "automation_id": plan.automation_id,
                        "followup_rule_id": plan.followup_rule_id,
                        "followup_step": plan.followup_step,
                    }
                    for plan in missing
                ]
            )
            .on_conflict_do_nothing(index_elements=[OutboundMessage.dedup_key])
            .returning(OutboundMessage.id)
        )
        result.created += len(list(inserted))
    await db.flush()
    return result
