"""E-mail delivery: ``email.deliver(email_id)`` sends one ``outbound_emails`` row at most once.

The api writes the outbox row, commits, then enqueues ``email.deliver`` on the default queue with the
job id ``email:{id}``. The job:

* locks the row (``SELECT … FOR UPDATE``), so a duplicate running at the same time waits and then
  sees it sent; a missing row, or one already ``sent``/``failed``, is a no-op;
* sends it over SMTP with a Message-ID derived from the dedup key (receivers drop a crash resend),
  multipart/alternative when the row has an HTML body, From = the row's ``from_name`` with SMTP_FROM's
  address;
* success → ``sent``; a 5xx refusal → ``failed`` (WARNING ``email.rejected``, no retry); a transient
  failure → the attempt is committed, then ``Retry`` with a growing delay (DNS failures are left to the
  worker's DNS policy). After the last try the row stays ``pending`` with its ``last_error``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import aiosmtplib
from arq import Retry
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from prosaas_common.db import unit_of_work
from prosaas_common.dns import is_dns_error
from prosaas_common.jobs import JobName, deliver_email_after_commit
from prosaas_common.logging import get_logger
from prosaas_common.models.email import EmailStatus, OutboundEmail
from prosaas_worker.context import JobContext, current_try, get_resources, job_pool
from prosaas_worker.email_transport import PermanentSmtpError, build_message, send_message, short_error
from prosaas_worker.registry import JobSpec, job

if TYPE_CHECKING:
    pass

JOB_NAME = JobName.EMAIL_DELIVER
MAX_TRIES = 8
# Delay before the next try after try N failed (N = 1, 2, 3, then the cap).
RETRY_DELAYS_S = (30.0, 60.0, 120.0, 300.0)

log = get_logger("prosaas.worker.email")


def enqueue_delivery(db: AsyncSession, ctx: JobContext, email_id: int) -> None:
    """Enqueue ``email.deliver`` for an outbox row another job wrote, once ``db`` committed."""
    deliver_email_after_commit(db, job_pool(ctx), email_id)


def retry_delay(job_try: int) -> float:
    return RETRY_DELAYS_S[min(max(job_try, 1), len(RETRY_DELAYS_S)) - 1]


async def deliver_email(ctx: JobContext, email_id: int) -> str:
    """Deliver outbox row ``email_id``; returns ``sent``, ``failed``, ``skipped`` or ``missing``."""
    resources = get_resources(ctx)
    settings = resources.settings
    transient: Exception | None = None
    async with unit_of_work(resources.session_factory) as session:
        row = await session.scalar(
            select(OutboundEmail).where(OutboundEmail.id == email_id).with_for_update()
        )
        if row is None:
            log.debug("email.missing", email_id=email_id)
            return "missing"
        if row.status != EmailStatus.PENDING:
            log.debug("email.skipped", email_id=email_id, status=row.status)
            return "skipped"
        message = build_message(
            settings,
            dedup_key=row.dedup_key,
            to_address=row.to_address,
            subject=row.subject,
            body_text=row.body_text,
            body_html=row.body_html,
            from_name=row.from_name,
        )
        row.attempts += 1
        try:
            await send_message(settings, message)
        except PermanentSmtpError as exc:
            row.status = EmailStatus.FAILED.value
            row.last_error = short_error(exc)
            log.warning("email.rejected", email_id=email_id, code=exc.code, error=row.last_error)
            return "failed"
        except (aiosmtplib.SMTPException, OSError) as exc:  # OSError covers refused and timed out
            row.last_error = short_error(exc)
            transient = exc
        else:
            row.status = EmailStatus.SENT.value
            row.sent_at = datetime.now(UTC)
            log.debug("email.sent", email_id=email_id, attempts=row.attempts)
            return "sent"
    # The attempt is committed; only now ask for another try (raising inside would roll it back).
    assert transient is not None
    if is_dns_error(transient):
        raise transient  # the worker's DNS policy (instrument) defers it
    raise Retry(defer=retry_delay(current_try(ctx))) from transient


JOBS: tuple[JobSpec, ...] = (job(deliver_email, name=JOB_NAME, max_tries=MAX_TRIES),)
