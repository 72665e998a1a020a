"""The schedule list this service runs, and how to point it at another list.

Real schedules are added here as the jobs they enqueue are written (each job must be idempotent and
accept ``scheduled_for``). ``SCHEDULER_SCHEDULES=module:attribute`` replaces the list, so tests and
one-off deployments can run schedules defined elsewhere without editing this module.
"""

from __future__ import annotations

import importlib
from datetime import timedelta

from prosaas_common.jobs import JobName, Queue
from prosaas_scheduler.schedule import Schedule, unique_schedules

SCHEDULES: list[Schedule] = [
    # Pending webhook deliveries whose job was lost (their retries themselves are deferred arq jobs).
    Schedule(
        name="webhooks-recover",
        job=JobName.WEBHOOKS_RECOVER,
        queue=Queue.DEFAULT,
        every=timedelta(seconds=30),
    ),
    # Reminders that fell due: one in-app notification (and e-mail) each.
    Schedule(
        name="reminders-due",
        job=JobName.REMINDERS_SEND_DUE,
        queue=Queue.DEFAULT,
        every=timedelta(seconds=30),
    ),
    # Messages to leads that fell due (automations, follow-ups, one-off sends), and in-doubt sends.
    Schedule(
        name="messages-due",
        job=JobName.MESSAGES_SEND_DUE,
        queue=Queue.DEFAULT,
        every=timedelta(seconds=30),
    ),
    # Rows that have outlived their use (expired tokens, old finished jobs, deliveries, e-mails …).
    Schedule(
        name="daily-cleanup",
        job=JobName.MAINTENANCE_CLEANUP,
        queue=Queue.LOW,
        cron="15 3 * * *",
    ),
    # WhatsApp gateway sessions; a no-op until the WhatsApp channel is configured.
    Schedule(
        name="whatsapp-session-check",
        job=JobName.WHATSAPP_CHECK_SESSIONS,
        queue=Queue.DEFAULT,
        every=timedelta(minutes=5),
    ),
]


def load_schedules(spec: str | None = None) -> tuple[Schedule, ...]:
    """``SCHEDULES`` above, or the list named by ``spec`` ("package.module:attribute").

    Raises ValueError with a readable reason when the spec, the module or a schedule is wrong.
    """
    if spec is None or not spec.strip():
        return unique_schedules(SCHEDULES)
    module_name, sep, attribute = spec.strip().partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(f"{spec!r}: expected 'package.module:attribute'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"{spec!r}: cannot import {module_name!r} ({exc})") from None
    try:
        value = getattr(module, attribute)
    except AttributeError:
        raise ValueError(f"{spec!r}: module {module_name!r} has no attribute {attribute!r}") from None
    if not isinstance(value, list | tuple):
        raise ValueError(f"{spec!r}: expected a list of Schedule, got {type(value).__name__}")
    try:
        return unique_schedules(value)
    except ValueError as exc:
        raise ValueError(f"{spec!r}: {exc}") from None
