"""Worker settings: which queues this process serves and how its arq workers behave."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from email.utils import parseaddr
from typing import Annotated, Any
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from prosaas_common.jobs import Queue
from prosaas_common.settings import AppEnv, CommonSettings, load_settings

SERVICE = "prosaas-worker"
# arq writes the health key with a TTL of interval + 1 s; a container health check that runs every
# 30 s or so needs the key refreshed at least that often.
MAX_HEALTH_INTERVAL_S = 30
DEFAULT_SMTP_URL = "smtp://127.0.0.1:1025"
DEFAULT_SMTP_FROM = "ProSaaS <no-reply@localhost>"
DEFAULT_OPENAI_API_BASE_URL = "https://api.openai.com/v1"
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


@dataclass(frozen=True)
class SmtpServer:
    """Where and how to submit mail, parsed from ``SMTP_URL`` by :func:`parse_smtp_url`."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None
    use_tls: bool = False  # smtps://: TLS from the first byte
    start_tls: bool = False  # smtp://…?starttls=true: plain connect, then STARTTLS (required)


def parse_smtp_url(url: str) -> SmtpServer:
    """``smtp://[user:pass@]host[:port][?starttls=true]`` or ``smtps://[user:pass@]host[:port]``.

    Ports default to 25 (smtp), 587 (smtp with STARTTLS) and 465 (smtps). ValueError says what is wrong
    without repeating the URL (it may hold a password).
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("smtp", "smtps"):
        raise ValueError("must be an smtp:// or smtps:// URL (smtp://[user:pass@]host:port[?starttls=true])")
    if not parts.hostname:
        raise ValueError("names no host (smtp://[user:pass@]host:port)")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("has an invalid port") from None
    query = {k.lower(): v[-1].strip().lower() for k, v in parse_qs(parts.query).items()}
    unknown = set(query) - {"starttls"}
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(sorted(unknown))} (only starttls=true|false)")
    starttls = query.get("starttls", "false")
    if starttls not in _TRUE + _FALSE:
        raise ValueError("starttls must be true or false")
    use_tls = parts.scheme == "smtps"
    start_tls = starttls in _TRUE
    if use_tls and start_tls:
        raise ValueError("smtps:// is already TLS; starttls=true applies to smtp:// only")
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    if port is None:
        port = 465 if use_tls else 587 if start_tls else 25
    return SmtpServer(parts.hostname, port, username, password, use_tls, start_tls)


class WorkerConfig(CommonSettings):
    """Variables of the worker process (``WorkerConfig``, so it never shadows arq's ``WorkerSettings``)."""

    # WORKER_QUEUES=high,default,low — a comma list of short names, not JSON (hence NoDecode).
    worker_queues: Annotated[list[Queue], NoDecode] = Field(default_factory=lambda: list(Queue))
    worker_max_jobs: Annotated[int, Field(ge=1, le=1000)] = 10
    worker_health_interval: Annotated[int, Field(ge=1)] = 15
    worker_job_timeout: Annotated[int, Field(ge=1, le=86_400)] = 300
    worker_shutdown_grace: Annotated[float, Field(ge=0, le=3600)] = 20.0
    # Names this process in its health keys; the container hostname by default, so `health` run inside
    # the same container checks this container's workers, not a sibling's (`--scale worker=3`).
    worker_instance_id: Annotated[str, Field(min_length=1, max_length=200)] = Field(
        default_factory=socket.gethostname
    )

    # Mail submission (the deliver_email job): see parse_smtp_url for the URL forms.
    smtp_url: str = DEFAULT_SMTP_URL
    smtp_from: str = DEFAULT_SMTP_FROM
    smtp_timeout: Annotated[float, Field(gt=0, le=300)] = 20.0

    # Messages to leads (messages.send_due): sends in flight at once, rows claimed per batch, how long a
    # claimed message may stay unanswered before it is checked with the provider and, if unsent, re-sent.
    messages_send_concurrency: Annotated[int, Field(ge=1, le=500)] = 50
    messages_batch_size: Annotated[int, Field(ge=1, le=5000)] = 500
    messages_in_doubt_after_s: Annotated[float, Field(ge=1, le=86_400)] = 300.0
    messages_max_attempts: Annotated[int, Field(ge=1, le=50)] = 6
    messages_http_timeout: Annotated[float, Field(gt=0, le=120)] = 15.0

    # maintenance.cleanup: finished rows older than this many days are deleted; dead letters, kept for
    # inspection and reruns, have their own (longer) retention.
    cleanup_retention_days: Annotated[int, Field(ge=1, le=3650)] = 30
    cleanup_dead_letter_retention_days: Annotated[int, Field(ge=1, le=3650)] = 90
    # The WhatsApp gateway (http(s) base URL); unset until the WhatsApp channel is set up, and then
    # whatsapp.check_sessions does nothing.
    whatsapp_gateway_url: str | None = None
    # Call summaries (calls.finalize) through OpenAI's Chat Completions API; unset key: an extractive
    # summary, no request. The base URL takes any server speaking the same protocol (tests: a local one).
    openai_api_key: SecretStr | None = None
    openai_api_base_url: str = DEFAULT_OPENAI_API_BASE_URL
    openai_summary_model: Annotated[str, Field(min_length=1, max_length=100)] = "gpt-4o-mini"
    openai_summary_timeout: Annotated[float, Field(gt=0, le=120)] = 20.0

    @field_validator("openai_api_key", mode="before")
    @classmethod
    def _empty_key_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("openai_api_base_url")
    @classmethod
    def _openai_base_url(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                "must be an http:// or https:// URL naming a host, e.g. https://api.openai.com/v1"
            )
        return value.strip().rstrip("/")

    @field_validator("whatsapp_gateway_url")
    @classmethod
    def _whatsapp_gateway_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL naming a host, e.g. http://baileys:3300")
        return value.strip().rstrip("/")

    @field_validator("smtp_url")
    @classmethod
    def _smtp_url(cls, value: str) -> str:
        parse_smtp_url(value)
        return value.strip()

    @field_validator("smtp_from")
    @classmethod
    def _smtp_from(cls, value: str) -> str:
        _, address = parseaddr(value)
        if "@" not in address or address.startswith("@") or address.endswith("@"):
            raise ValueError("must be an address like 'ProSaaS <no-reply@example.com>'")
        return value.strip()

    @model_validator(mode="after")
    def _smtp_in_production(self) -> WorkerConfig:
        if self.app_env is AppEnv.PRODUCTION and (
            "smtp_url" not in self.model_fields_set or self.smtp_url == DEFAULT_SMTP_URL
        ):
            raise ValueError(
                "SMTP_URL: must be set explicitly in production (the default points at a local test "
                "server); e.g. smtp://user:pass@smtp.example.com:587?starttls=true"
            )
        return self

    @property
    def smtp_server(self) -> SmtpServer:
        return parse_smtp_url(self.smtp_url)

    @property
    def smtp_from_address(self) -> str:
        """The bare address of SMTP_FROM (the envelope sender and the Message-ID domain)."""
        return parseaddr(self.smtp_from)[1]

    @field_validator("worker_instance_id")
    @classmethod
    def _instance_id(cls, value: str) -> str:
        value = value.strip()
        if not value or any(ch.isspace() or ch in "*?[]" for ch in value):
            raise ValueError("must be non-empty, without whitespace or glob characters")
        return value

    @field_validator("worker_queues", mode="before")
    @classmethod
    def _parse_queues(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part for part in value.split(",") if part.strip()]
        if not isinstance(value, list | tuple):
            return value
        queues: list[Queue] = []
        for item in value:
            queue = Queue.from_name(item) if isinstance(item, str) else Queue(item)
            if queue not in queues:
                queues.append(queue)
        if not queues:
            choices = ", ".join(q.short_name for q in Queue)
            raise ValueError(f"name at least one queue (choose from {choices})")
        return queues

    @field_validator("worker_health_interval")
    @classmethod
    def _health_interval(cls, value: int) -> int:
        if value > MAX_HEALTH_INTERVAL_S:
            raise ValueError(
                f"must be at most {MAX_HEALTH_INTERVAL_S} s: the health key lives interval + 1 s and the "
                "health check must see it refreshed"
            )
        return value


def load_worker_config() -> WorkerConfig:
    """Settings for a process entry point; a bad variable prints one line and exits 2."""
    return load_settings(WorkerConfig, SERVICE)
