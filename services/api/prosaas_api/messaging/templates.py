"""POST /api/templates/preview: a template filled with sample values, its problems and its SMS length,
so the SPA can show them while the template is typed. Always 200: problems are the answer, not an
error."""

from __future__ import annotations

import math
from datetime import UTC, datetime, time, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends

from prosaas_api.auth.permissions import Permission
from prosaas_api.auth.principal import Principal, require
from prosaas_api.messaging.schemas import PreviewOut, PreviewRequest
from prosaas_api.tenancy import tenant_of
from prosaas_common.messaging.planner import appointment_values, lead_values
from prosaas_common.messaging.templates import (
    APPOINTMENT_VARIABLES,
    FOLLOWUP_VARIABLES,
    render,
    template_problems,
)
from prosaas_common.models import Appointment, Business, Lead
from prosaas_common.models.messaging import MAX_TEMPLATE_LENGTH
from prosaas_common.web import DbSession

router = APIRouter(prefix="/api/templates", tags=["messages"])
Reader = Annotated[Principal, Depends(require(Permission.LEADS_READ))]

# The GSM 03.38 alphabet: texts in it take 160 characters per SMS (153 when split), the extension
# characters count twice; any other character makes the whole text UCS-2 (70, or 67 when split).
GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿"
    "abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = frozenset("\f^{}\\[~]|€")


def sms_segments(text: str) -> int:
    """How many SMS the text is sent as."""
    if not text:
        return 0
    if all(c in GSM_BASIC or c in GSM_EXTENSION for c in text):
        units = len(text) + sum(c in GSM_EXTENSION for c in text)
        single, part = 160, 153
    else:
        units = len(text.encode("utf-16-le")) // 2
        single, part = 70, 67
    return 1 if units <= single else math.ceil(units / part)


def sample_values(business: Business, kind: str) -> dict[str, str]:
    """What a real message would say, for a made-up lead (and appointment tomorrow at 10:00 in the
    business's time zone, or the status "Qualified")."""
    lead = Lead(first_name="Ada", last_name="Lovelace", phone="+14155550100")
    if kind == "followup":
        return {**lead_values(lead, business), "status": "Qualified"}
    zone = ZoneInfo(business.timezone)
    tomorrow = datetime.now(UTC).astimezone(zone).date() + timedelta(days=1)
    starts_at = datetime.combine(tomorrow, time(10, 0), tzinfo=zone)
    appointment = Appointment(
        starts_at=starts_at, ends_at=starts_at + timedelta(minutes=30), title="Consultation"
    )
    return appointment_values(appointment, lead, business, "Main calendar")


@router.post("/preview", operation_id="templates_preview", response_model=PreviewOut)
async def preview(body: PreviewRequest, principal: Reader, db: DbSession) -> PreviewOut:
    """The rendered sample and the problems (empty when the template can be saved)."""
    business = await db.get(Business, tenant_of(principal))
    assert business is not None
    allowed = APPOINTMENT_VARIABLES if body.kind == "appointment" else FOLLOWUP_VARIABLES
    problems = template_problems(body.template, allowed)
    if len(body.template) > MAX_TEMPLATE_LENGTH:
        problems.append(f"longer than {MAX_TEMPLATE_LENGTH} characters ({len(body.template)})")
    try:
        text: str | None = render(body.template, sample_values(business, body.kind))
    except ValueError:  # unbalanced braces: nothing to show
        text = None
    return PreviewOut(
        text=text,
        problems=problems,
        variables=list(allowed),
        characters=len(text or ""),
        segments=sms_segments(text or ""),
    )
