"""Outbound webhooks: one ``webhook_deliveries`` row per (event, URL), POSTed signed, retried, dead-lettered.

* :func:`create_deliveries` runs inside ``events.dispatch`` (see :data:`events.HANDLERS`): for each URL
  of the business that takes the event it inserts a row (``ON CONFLICT (event_id, url) DO NOTHING``, so
  a duplicate dispatch adds nothing) and, after the commit, enqueues ``webhooks.deliver`` with the job
  id ``webhook:{delivery_id}:{attempts}``. A business without a signing secret gets one here.
* :func:`deliver` locks the row, skips it unless ``pending``, and POSTs it (signature in
  :mod:`prosaas_common.webhooks`). 2xx → ``delivered``. Otherwise the attempt (status code, error) is
  committed and the job asks arq for another try with ``Retry(defer=…)`` after the jittered backoff;
  the last failure marks it ``dead`` (WARNING ``webhook.dead``) and tells the business's owners and
  admins (:mod:`prosaas_worker.notify`: in-app and e-mail, once per delivery and user). A DNS failure
  is re-raised after the commit, so the worker's DNS policy defers it (it still counts as an attempt).
* A *round* is one arq job (``since`` = the row's attempts when it was enqueued); its tries are arq's
  ``job_try``. A re-send starts a new round; an older round that finds more attempts on the row than
  it made itself has been superseded and stops, so two rounds never POST side by side.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx
from arq import Retry
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from prosaas_common.db import unit_of_work
from prosaas_common.dns import is_dns_error
from prosaas_common.jobs import JobName, enqueue_after_commit
from prosaas_common.logging import get_logger
from prosaas_common.models import BusinessSettings, DomainEvent
from prosaas_common.models.webhook import DeliveryStatus, WebhookDelivery
from prosaas_common.webhooks import (
    DELIVER_JOB,
    DELIVER_QUEUE,
    EVENTS,
    MAX_ATTEMPTS,
    delivery_job_id,
    new_secret,
    request_body,
    retry_delay,
    signed_headers,
    target_urls,
)
from prosaas_worker.context import JobContext, current_try, get_resources, job_pool
from prosaas_worker.jobs import events
from prosaas_worker.notify import StaffNotice, notify_staff
from prosaas_worker.registry import JobSpec, job
from prosaas_worker.retry import dns_retry_plan

if TYPE_CHECKING:
    pass

JOB_NAME = DELIVER_JOB
REQUEST_TIMEOUT_S = 10.0
ERROR_LENGTH = 500
USER_AGENT = "ProSaaS-Webhooks/1"
# A pending delivery whose attempt is this late has lost its job; the sweep takes at most a batch.
RECOVER_AFTER_S = 600
RECOVER_BATCH = 500

log = get_logger("prosaas.worker.webhooks")


def enqueue_delivery(db: AsyncSession, ctx: JobContext, delivery_id: int, attempts: int) -> None:
    enqueue_after_commit(
        db,
        job_pool(ctx),
        JOB_NAME,
        delivery_id,
        attempts,
        queue=DELIVER_QUEUE,
        job_id=delivery_job_id(delivery_id, attempts),
    )


async def signing_secret(db: AsyncSession, business_id: int) -> str:
    """The business's webhook secret; one is generated and stored if it has none (never unsigned).
    Two jobs generating at once agree: the conditional update lets only the first one write."""
    query = select(BusinessSettings.webhook_secret).where(BusinessSettings.business_id == business_id)
    secret = await db.scalar(query)
    if secret is None:
        await db.execute(
            update(BusinessSettings)
            .where(BusinessSettings.business_id == business_id, BusinessSettings.webhook_secret.is_(None))
            .values(webhook_secret=new_secret())
        )
        await db.execute(  # a business made before settings rows existed
            insert(BusinessSettings)
            .values(business_id=business_id, webhook_secret=new_secret())
            .on_conflict_do_nothing(index_elements=[BusinessSettings.business_id])
        )
        secret = await db.scalar(query)
    assert secret is not None
    return secret


async def create_deliveries(ctx: JobContext, db: AsyncSession, event: DomainEvent) -> None:
    """Handler of ``events.dispatch``: a delivery row per configured URL, each enqueued after commit."""
    settings = await db.scalar(
        select(BusinessSettings).where(BusinessSettings.business_id == event.business_id)
    )
    urls = target_urls(event.type, settings)
    if not urls:
        return
    await signing_secret(db, event.business_id)
    now = datetime.now(UTC)
    created = await db.scalars(
        insert(WebhookDelivery)
        .values(
            [
                {
                    "business_id": event.business_id,
                    "event_id": event.id,
                    "event_type": event.type,
                    "url": url,
                    "payload": event.payload,
                    "next_attempt_at": now,
                }
                for url in urls
            ]
        )
        .on_conflict_do_nothing(index_elements=[WebhookDelivery.event_id, WebhookDelivery.url])
        .returning(WebhookDelivery.id)
    )
    for delivery_id in created.all():
        enqueue_delivery(db, ctx, delivery_id, 0)
        log.debug("webhook.queued", delivery_id=delivery_id, event_id=event.id, type=event.type)


def dead_notice(row: WebhookDelivery) -> StaffNotice:
    """What owners and admins are told when a delivery is given up (the host only: a URL's path or
    query may hold a token)."""
    host = urlsplit(row.url).hostname or "the configured URL"
    return StaffNotice(
        kind="webhook_failing",
        title="A webhook could not be delivered",
        body=(
            f"The {row.event_type} webhook #{row.id} to {host} failed {row.attempts} times and was given up."
            f"\nLast error: {row.last_error or 'unknown'}"
            "\nCheck the receiver and the URL in the webhook settings, then re-send the delivery."
        ),
        link="/settings/webhooks",
    )


def short_error(exc: BaseException) -> str:
    message = str(exc).strip()
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return text[:ERROR_LENGTH]


async def post(url: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    """POST to exactly the configured URL (httpx's ``base_url`` would append a slash); redirects are
    not followed (a 3xx counts as a failure)."""
    async with httpx.AsyncClient(
        timeout=REQUEST_TIMEOUT_S, follow_redirects=False, headers={"User-Agent": USER_AGENT}
    ) as client:
        return await client.post(url, content=body, headers=headers)


async def deliver(ctx: JobContext, delivery_id: int, since: int = 0) -> str:
    """POST delivery ``delivery_id`` once more; returns ``delivered``, ``dead``, ``skipped``,
    ``superseded`` or ``missing``, or raises ``Retry`` (a DNS failure: the error) after a failure."""
    job_try = current_try(ctx)
    failure: Exception | None = None
    async with unit_of_work(get_resources(ctx).session_factory) as db:
        row = await db.scalar(
            select(WebhookDelivery).where(WebhookDelivery.id == delivery_id).with_for_update()
        )
        if row is None:
            log.debug("webhook.missing", delivery_id=delivery_id)
            return "missing"
        if row.status != DeliveryStatus.PENDING:
            log.debug("webhook.skipped", delivery_id=delivery_id, status=row.status)
            return "skipped"
        if row.attempts - since >= job_try:  # a newer round made attempts this one did not
            log.debug("webhook.superseded", delivery_id=delivery_id, since=since, attempts=row.attempts)
            return "superseded"
        body = request_body(row.id, row.event_type, row.created_at, row.business_id, row.payload)
        headers = signed_headers(await signing_secret(db, row.business_id), body, row.event_type, row.id)
        row.attempts += 1
        try:
            response = await post(row.url, body, headers)
        except (httpx.HTTPError, OSError) as exc:
            failure = exc
            row.last_status_code = None
            row.last_error = short_error(exc)
        else:
            row.last_status_code = response.status_code
            if response.is_success:
                row.status = DeliveryStatus.DELIVERED.value
                row.delivered_at = datetime.now(UTC)
                row.next_attempt_at = None
                row.last_error = None
                log.debug("webhook.delivered", delivery_id=delivery_id, attempts=row.attempts)
                return "delivered"
            row.last_error = f"HTTP {response.status_code}: {response.text[:200]}".strip()[:ERROR_LENGTH]
        if job_try >= MAX_ATTEMPTS:
            row.status = DeliveryStatus.DEAD.value
            row.next_attempt_at = None
            log.warning(
                "webhook.dead",
                delivery_id=delivery_id,
                business_id=row.business_id,
                event_type=row.event_type,
                attempts=row.attempts,
                status_code=row.last_status_code,
                error=row.last_error,
            )
            await notify_staff(db, ctx, row.business_id, dead_notice(row), f"webhook-dead:{row.id}")
            return "dead"
        dns = failure is not None and is_dns_error(failure)
        delay = dns_retry_plan(job_try).delay_s if dns else retry_delay(job_try)
        row.next_attempt_at = datetime.now(UTC) + timedelta(seconds=delay)
    # The attempt is committed; only now ask for another try (raising inside would roll it back).
    if dns and failure is not None:
        raise failure  # the worker's DNS policy (instrument) turns it into Retry
    raise Retry(defer=delay) from failure


async def recover(ctx: JobContext, scheduled_for: str | None = None) -> int:
    """Scheduled sweep: re-enqueue pending deliveries whose attempt is long overdue — their job was
    lost (a Redis flush, a lost enqueue after commit). Rows are claimed with ``SKIP LOCKED``; a round
    that is in fact still alive stands down when it sees the newer attempts, so nothing is POSTed twice
    at once. Returns how many were re-enqueued."""
    overdue = func.now() - timedelta(seconds=RECOVER_AFTER_S)
    async with unit_of_work(get_resources(ctx).session_factory) as db:
        rows = await db.execute(
            select(WebhookDelivery.id, WebhookDelivery.attempts)
            .where(
                WebhookDelivery.status == DeliveryStatus.PENDING.value,
                func.coalesce(WebhookDelivery.next_attempt_at, WebhookDelivery.created_at) < overdue,
            )
            .order_by(WebhookDelivery.id)
            .limit(RECOVER_BATCH)
            .with_for_update(skip_locked=True)
        )
        found = list(rows)
        for delivery_id, attempts in found:
            enqueue_delivery(db, ctx, delivery_id, attempts)
    if found:
        log.info("webhook.recovered", count=len(found))
    return len(found)


def register_handlers() -> None:
    """Add :func:`create_deliveries` to ``events.dispatch``'s handlers of every webhook event (once)."""
    for event_type in EVENTS:
        handlers = events.HANDLERS.get(event_type, ())
        if create_deliveries not in handlers:
            events.HANDLERS[event_type] = (*handlers, create_deliveries)


register_handlers()

JOBS: tuple[JobSpec, ...] = (
    job(deliver, name=JOB_NAME, max_tries=MAX_ATTEMPTS, timeout_s=30),
    job(recover, name=JobName.WEBHOOKS_RECOVER, max_tries=1, timeout_s=60),
)
