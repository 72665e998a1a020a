"""Build an outbox e-mail as a MIME message and submit it to the SMTP server of ``SMTP_URL``.

With an HTML body the message is multipart/alternative (text first, HTML last: readers show the last
part they can). ``From`` is always SMTP_FROM's address; a business chooses only the display name, which
is cut to one line so it can never add a header.

:func:`send_message` never decides retries itself: it raises :class:`PermanentSmtpError` when the
server refused the message for good (5xx), and lets every other failure (connection refused, timeout,
4xx, a TLS or auth problem of our own configuration) propagate for the caller to retry.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, parseaddr

import aiosmtplib

from prosaas_common.email_templates import clean_display_name
from prosaas_worker.settings import WorkerConfig

LAST_ERROR_MAX = 500
# 5xx replies that blame our own configuration (auth required/failed), not the message: retried.
OUR_CONFIG_CODES = frozenset({530, 534, 535, 538})


class PermanentSmtpError(Exception):
    """The server refused the message for good (an SMTP 5xx reply); resending it cannot help."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code} {message}".strip())
        self.code = code


def message_id(dedup_key: str, from_address: str) -> str:
    """A stable Message-ID for one outbox row, so a receiver can drop a resend after a crash."""
    digest = hashlib.sha256(dedup_key.encode()).hexdigest()[:32]
    domain = from_address.rpartition("@")[2] or "localhost"
    return f"<{digest}@{domain}>"


def from_header(settings: WorkerConfig, from_name: str | None) -> str:
    """``from_name`` (or SMTP_FROM's own display name) with SMTP_FROM's address, CR/LF removed."""
    name = clean_display_name(from_name) or clean_display_name(parseaddr(settings.smtp_from)[0]) or ""
    return formataddr((name, settings.smtp_from_address))


def build_message(
    settings: WorkerConfig,
    *,
    dedup_key: str,
    to_address: str,
    subject: str,
    body_text: str,
    body_html: str | None = None,
    from_name: str | None = None,
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = from_header(settings, from_name)
    message["To"] = to_address
    message["Subject"] = " ".join(subject.split())  # one line, whoever wrote the row
    message["Message-ID"] = message_id(dedup_key, settings.smtp_from_address)
    message["Date"] = format_datetime(datetime.now(UTC))
    message.set_content(body_text)
    if body_html:
        message.add_alternative(body_html, subtype="html")
    return message


def short_error(exc: BaseException) -> str:
    text = str(exc).strip().replace("\n", " ")
    return (f"{type(exc).__name__}: {text}" if text else type(exc).__name__)[:LAST_ERROR_MAX]


def _permanent(exc: Exception) -> PermanentSmtpError | None:
    """The permanent refusal hidden in an aiosmtplib error, if it is one."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        # Raised only when every recipient was refused; permanent if none was a 4xx (e.g. greylisting).
        codes = [r.code for r in exc.recipients]
        if codes and all(code >= 500 for code in codes):
            first = exc.recipients[0]
            return PermanentSmtpError(first.code, first.message)
        return None
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError | aiosmtplib.SMTPSenderRefused):
        return None  # our credentials or SMTP_FROM are wrong: retry (and alert), never drop the e-mail
    if (
        isinstance(exc, aiosmtplib.SMTPResponseException)
        and exc.code >= 500
        and exc.code not in OUR_CONFIG_CODES
    ):
        return PermanentSmtpError(exc.code, exc.message)
    return None


async def send_message(settings: WorkerConfig, message: EmailMessage) -> None:
    """Submit ``message``; :class:`PermanentSmtpError` on a 5xx refusal, anything else propagates."""
    server = settings.smtp_server
    try:
        await aiosmtplib.send(
            message,
            sender=settings.smtp_from_address,
            hostname=server.host,
            port=server.port,
            username=server.username,
            password=server.password,
            use_tls=server.use_tls,
            start_tls=server.start_tls,
            timeout=settings.smtp_timeout,
        )
    except aiosmtplib.SMTPException as exc:
        permanent = _permanent(exc)
        if permanent is not None:
            raise permanent from exc
        raise
