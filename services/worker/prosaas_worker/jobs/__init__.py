"""Every job the workers run, grouped by domain. A new domain module adds its ``JOBS`` here."""

from __future__ import annotations

from prosaas_worker.jobs import (
    calls,
    email,
    events,
    leads,
    maintenance,
    messages,
    outbound_calls,
    recordings,
    reminders,
    system,
    webhooks,
    whatsapp,
)
from prosaas_worker.registry import JobSpec

ALL_JOBS: tuple[JobSpec, ...] = (
    *system.JOBS,
    *email.JOBS,
    *events.JOBS,
    *leads.JOBS,
    *webhooks.JOBS,
    *reminders.JOBS,
    *messages.JOBS,
    *calls.JOBS,
    *outbound_calls.JOBS,
    *recordings.JOBS,
    *maintenance.JOBS,
    *whatsapp.JOBS,
)
