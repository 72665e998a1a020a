"""Bodies of /api/business/current/settings and /api/business/current/phone-numbers.

Ranges and formats are checked here (422 on the field). The two checks that need the business — the
transfer number read in its ``default_region`` and a phone number's normalisation — run in the router
and answer the same way (:func:`field_error`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi.exceptions import RequestValidationError
from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

from prosaas_common.phones import SUPPORTED_REGIONS

MAX_WEBHOOK_URL_LENGTH = 2000
MAX_EMAIL_FROM_NAME_LENGTH = 200
WEBHOOK_SECRET_PREFIX = "whsec_"


def _no_nul(value: str) -> str:
    # Postgres text cannot hold NUL; refusing it here keeps it a 422 instead of a database error.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


Text = Annotated[str, AfterValidator(_no_nul)]
AiProvider = Literal["auto", "openai", "offline"]
CallGoal = Literal["book_appointment", "capture_lead", "answer_questions"]
# BCP-47 language tags as the speech providers take them: en, de, pt-BR, zh-Hant-TW, es-419.
LanguageTag = Annotated[
    str, StringConstraints(pattern=r"^[a-z]{2,3}(-[A-Z][a-z]{3})?(-([A-Z]{2}|[0-9]{3}))?$", max_length=16)
]
VoiceName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,49}$")]
Label = Annotated[Text, StringConstraints(strip_whitespace=True, max_length=100)]


def field_error(field: str, message: str, value: object) -> RequestValidationError:
    """A 422 on one body field, shaped like pydantic's own errors."""
    return RequestValidationError(
        [{"type": "value_error", "loc": ("body", field), "msg": f"Value error, {message}", "input": value}]
    )


def webhook_url(value: str) -> str | None:
    """An absolute http(s) URL with a host, as given (not rewritten); an empty string clears it."""
    value = value.strip()
    if not value:
        return None
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ValueError("must not contain spaces or control characters")
    parts = urlsplit(value)
    if parts.scheme.lower() not in {"http", "https"}:
        raise ValueError("must be an absolute http:// or https:// URL")
    try:
        host, _ = parts.hostname, parts.port
    except ValueError:
        raise ValueError("has an invalid port") from None
    if not host:
        raise ValueError("must name a host")
    return value


def email_from_name(value: str) -> str | None:
    """A display name for From: one line (CR/LF or other control characters are refused, never
    silently dropped), trimmed, at most 200 characters; blank clears it (the business name is used)."""
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ValueError("must be one line, without control characters")
    value = value.strip()
    if len(value) > MAX_EMAIL_FROM_NAME_LENGTH:
        raise ValueError(f"must be at most {MAX_EMAIL_FROM_NAME_LENGTH} characters")
    return value or None


class PhoneNumberOut(BaseModel):
    id: int
    e164: str
    label: str


class SettingsFields(BaseModel):
    """The writable settings, shared by the response and (all optional) the update body."""

    # AI agent
    ai_provider: AiProvider
    ai_voice: str
    ai_language: str
    system_prompt: str
    greeting: str
    call_goal: CallGoal
    silence_timeout_s: int
    silence_prompts_before_hangup: int
    max_call_length_s: int
    max_concurrent_calls: int
    max_outbound_calls: int = Field(description="outbound calls of the business live at once (1-50)")
    recording_enabled: bool
    transfer_number: str | None = Field(description="E.164; calls are transferred here on request")
    # Booking policy
    booking_enabled: bool
    appointment_duration_min: int
    min_notice_min: int
    booking_window_days: int
    cancellation_notice_h: int
    require_email: bool
    # Outbound webhooks
    webhook_url: str | None
    call_completed_webhook_url: str | None
    lead_status_webhook_url: str | None
    # E-mail
    email_from_name: str | None = Field(
        description="the From display name of e-mail sent for the business (its name when null); "
        "the address is always the platform's"
    )


class SettingsOut(SettingsFields):
    webhook_secret_set: bool
    webhook_secret_hint: str | None = Field(
        description="the secret's last 4 characters; the secret is never shown"
    )
    default_region: str = Field(description="ISO 3166 region for numbers written without +country")
    phone_numbers: list[PhoneNumberOut]
    updated_at: datetime


# Columns that cannot be null: an explicit null for them is a 422, not "leave as is".
NOT_NULLABLE = (
    "ai_provider",
    "ai_voice",
    "ai_language",
    "system_prompt",
    "greeting",
    "call_goal",
    "silence_timeout_s",
    "silence_prompts_before_hangup",
    "max_call_length_s",
    "max_concurrent_calls",
    "max_outbound_calls",
    "recording_enabled",
    "booking_enabled",
    "appointment_duration_min",
    "min_notice_min",
    "booking_window_days",
    "cancellation_notice_h",
    "require_email",
    "default_region",
)
WEBHOOK_URL_FIELDS = ("webhook_url", "call_completed_webhook_url", "lead_status_webhook_url")
WebhookUrl = Annotated[Text, StringConstraints(max_length=MAX_WEBHOOK_URL_LENGTH)]


class SettingsUpdate(BaseModel):
    """Any subset of the settings; fields left out stay as they are. ``null`` (or "") clears the
    transfer number, the webhook URLs and the e-mail sender name; other fields refuse null."""

    model_config = ConfigDict(extra="forbid")

    ai_provider: AiProvider | None = None
    ai_voice: VoiceName | None = None
    ai_language: LanguageTag | None = None
    system_prompt: Annotated[Text, StringConstraints(max_length=8000)] | None = None
    greeting: Annotated[Text, StringConstraints(max_length=1000)] | None = None
    call_goal: CallGoal | None = None
    silence_timeout_s: Annotated[int, Field(ge=3, le=60)] | None = None
    silence_prompts_before_hangup: Annotated[int, Field(ge=1, le=5)] | None = None
    max_call_length_s: Annotated[int, Field(ge=60, le=3600)] | None = None
    max_concurrent_calls: Annotated[int, Field(ge=1, le=50)] | None = None
    max_outbound_calls: Annotated[int, Field(ge=1, le=50)] | None = None
    recording_enabled: bool | None = None
    transfer_number: Annotated[Text, StringConstraints(max_length=40)] | None = Field(
        None, description="any notation; national numbers are read in the business's default_region"
    )
    booking_enabled: bool | None = None
    appointment_duration_min: Annotated[int, Field(ge=5, le=480)] | None = None
    min_notice_min: Annotated[int, Field(ge=0, le=10080)] | None = None
    booking_window_days: Annotated[int, Field(ge=1, le=365)] | None = None
    cancellation_notice_h: Annotated[int, Field(ge=0, le=168)] | None = None
    require_email: bool | None = None
    webhook_url: WebhookUrl | None = None
    call_completed_webhook_url: WebhookUrl | None = None
    lead_status_webhook_url: WebhookUrl | None = None
    email_from_name: Text | None = Field(None, description="one line, ≤ 200 characters; null or blank clears")
    default_region: str | None = Field(None, description="ISO 3166 region, e.g. US, DE, IL")

    @field_validator(*NOT_NULLABLE)
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may not be null")
        return value

    @field_validator(*WEBHOOK_URL_FIELDS)
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else webhook_url(value)

    @field_validator("email_from_name")
    @classmethod
    def _from_name(cls, value: str | None) -> str | None:
        return None if value is None else email_from_name(value)

    @field_validator("default_region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        if value is not None and value.upper() not in SUPPORTED_REGIONS:
            raise ValueError("not a supported ISO 3166 region code (e.g. US, DE, IL)")
        return None if value is None else value.upper()


class WebhookSecretOut(BaseModel):
    webhook_secret: str = Field(description="shown only in this response; store it now")
    rotated_at: datetime


class PhoneNumberIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    number: Annotated[Text, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)] = Field(
        validation_alias=AliasChoices("number", "e164"),
        description="E.164 or national (read in the default_region); the key may also be e164",
    )
    label: Label = ""


class PhoneNumberUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: Label
