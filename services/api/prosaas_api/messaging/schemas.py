"""Request and response bodies of appointment automations, follow-up rules, template previews and
messages to leads."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from prosaas_api.ids import BodyId
from prosaas_common.messaging.templates import (
    APPOINTMENT_VARIABLES,
    FOLLOWUP_VARIABLES,
    template_problems,
)
from prosaas_common.models.messaging import (
    CHANNELS,
    MAX_FOLLOWUP_STEPS,
    MAX_TEMPLATE_LENGTH,
    MESSAGE_STATUSES,
    TRIGGERS,
)

ChannelName = Literal["sms", "whatsapp"]
TriggerName = Literal["booked", "before_start", "after_end"]
MessageStatusName = Literal["scheduled", "sending", "sent", "delivered", "undelivered", "failed", "cancelled"]
assert set(CHANNELS) == set(ChannelName.__args__)  # type: ignore[attr-defined]
assert set(TRIGGERS) == set(TriggerName.__args__)  # type: ignore[attr-defined]
assert set(MESSAGE_STATUSES) == set(MessageStatusName.__args__)  # type: ignore[attr-defined]

MAX_OFFSET_MINUTES = 43_200  # 30 days
MAX_FOLLOWUP_DELAY = 129_600  # 90 days
MAX_PREVIEW_LENGTH = 10_000  # longer than a template may be, so the preview can say so


def sendable(channel: ChannelName) -> ChannelName:
    """Only SMS sends today; WhatsApp is part of the schema so rules can move to it later."""
    if channel != "sms":
        raise ValueError(f"{channel} is not available yet; use sms")
    return channel


def checked_template(allowed: tuple[str, ...]) -> Callable[[str], str]:
    def check(template: str) -> str:
        problems = template_problems(template, allowed)
        if problems:
            raise ValueError("; ".join(problems))
        return template

    return check


Name = Annotated[str, Field(min_length=1, max_length=100)]
Channel = Annotated[ChannelName, AfterValidator(sendable)]
Offset = Annotated[int, Field(ge=0, le=MAX_OFFSET_MINUTES)]
TemplateText = Annotated[str, Field(min_length=1, max_length=MAX_TEMPLATE_LENGTH)]
AppointmentTemplate = Annotated[TemplateText, AfterValidator(checked_template(APPOINTMENT_VARIABLES))]
FollowupTemplate = Annotated[TemplateText, AfterValidator(checked_template(FOLLOWUP_VARIABLES))]


class Patch(BaseModel):
    """A partial update: fields left out stay as they are; ``null`` is refused (nothing here is
    optional on the row)."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("must not be null (leave the field out to keep it)")
        return value


# Appointment automations --------------------------------------------------------------------------
class AutomationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    trigger: TriggerName = Field(
        description="booked: offset after booking (0 = at once); before_start: offset before the start; "
        "after_end: offset after the end"
    )
    offset_minutes: Offset = 0
    channel: Channel = "sms"
    template: AppointmentTemplate = Field(description=f"variables: {', '.join(APPOINTMENT_VARIABLES)}")
    is_active: bool = True


class AutomationUpdate(Patch):
    name: Name | None = None
    trigger: TriggerName | None = None
    offset_minutes: Offset | None = None
    channel: Channel | None = None
    template: AppointmentTemplate | None = None
    is_active: bool | None = None


class AutomationOut(BaseModel):
    id: int
    name: str
    trigger: TriggerName
    offset_minutes: int
    channel: ChannelName
    template: str
    is_active: bool
    created_at: datetime
    updated_at: datetime


class AutomationList(BaseModel):
    items: list[AutomationOut]


# Follow-up rules ----------------------------------------------------------------------------------
class FollowupStep(BaseModel):
    model_config = ConfigDict(extra="forbid")

    delay_minutes: Annotated[int, Field(ge=0, le=MAX_FOLLOWUP_DELAY)] = Field(
        description="minutes after the lead entered the status"
    )
    template: FollowupTemplate = Field(description=f"variables: {', '.join(FOLLOWUP_VARIABLES)}")


def increasing(steps: list[FollowupStep]) -> list[FollowupStep]:
    for number in range(1, len(steps)):
        if steps[number].delay_minutes <= steps[number - 1].delay_minutes:
            raise ValueError(
                f"delay_minutes must grow from step to step: step {number + 1} "
                f"({steps[number].delay_minutes}) is not after step {number} "
                f"({steps[number - 1].delay_minutes})"
            )
    return steps


Steps = Annotated[
    list[FollowupStep],
    Field(min_length=1, max_length=MAX_FOLLOWUP_STEPS),
    AfterValidator(increasing),
]


class FollowupRuleCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status_id: BodyId = Field(description="a lead status of the business")
    name: Name
    channel: Channel = "sms"
    steps: Steps
    is_active: bool = True


class FollowupRuleUpdate(Patch):
    status_id: BodyId | None = None
    name: Name | None = None
    channel: Channel | None = None
    steps: Steps | None = None
    is_active: bool | None = None


class StepOut(BaseModel):
    delay_minutes: int
    template: str


class FollowupRuleOut(BaseModel):
    id: int
    status_id: int
    name: str
    channel: ChannelName
    steps: list[StepOut]
    is_active: bool
    created_at: datetime
    updated_at: datetime


class FollowupRuleList(BaseModel):
    items: list[FollowupRuleOut]


# Template previews --------------------------------------------------------------------------------
class PreviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    template: Annotated[str, Field(max_length=MAX_PREVIEW_LENGTH)]
    kind: Literal["appointment", "followup"]


class PreviewOut(BaseModel):
    text: str | None = Field(description="the template filled with sample values; null when unreadable")
    problems: list[str] = Field(description="what keeps the template from being saved (empty: valid)")
    variables: list[str] = Field(description="the variables this kind of template may use")
    characters: int
    segments: int = Field(description="SMS segments the sample text takes")


# Messages -----------------------------------------------------------------------------------------
def not_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("must not be blank")
    return text


class MessageSend(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: Annotated[str, Field(min_length=1, max_length=MAX_TEMPLATE_LENGTH), AfterValidator(not_blank)]


class MessageOut(BaseModel):
    id: int
    kind: Literal["appointment", "followup", "manual"] = Field(description="what planned the message")
    channel: ChannelName
    status: MessageStatusName
    to_number: str
    from_number: str | None
    body: str
    send_at: datetime
    attempts: int
    sent_at: datetime | None
    delivered_at: datetime | None
    provider_sid: str | None
    provider_status: str | None
    last_error: str | None
    lead_id: int | None
    appointment_id: int | None
    automation_id: int | None
    followup_rule_id: int | None
    followup_step: int | None
    created_by_user_id: int | None
    created_at: datetime
    updated_at: datetime


class MessagePage(BaseModel):
    items: list[MessageOut]
    next_before: int | None = Field(description="pass as before for the next page; null at the end")
