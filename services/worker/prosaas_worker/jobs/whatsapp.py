"""WhatsApp session check: ``whatsapp.check_sessions`` runs every 5 minutes from the scheduler.

This is the slot only: the schedule, the job name and the ``WHATSAPP_GATEWAY_URL`` setting exist so the
WhatsApp channel plugs into a running system. The check itself (asking the gateway which business
sessions are connected and flagging the ones that dropped) comes with the WhatsApp channel. Until then
an unconfigured gateway is the normal state and the job stays silent (DEBUG); a configured one gets a
single WARNING per process saying the check is not there yet, never one per run.
"""

from __future__ import annotations

from datetime import datetime

from prosaas_common.jobs import JobName
from prosaas_common.logging import get_logger
from prosaas_worker.context import JobContext, get_resources
from prosaas_worker.registry import JobSpec, job

NOT_CONFIGURED = "not_configured"
NOT_IMPLEMENTED = "not_implemented"

log = get_logger("prosaas.worker.whatsapp")
# Gateways already warned about in this process (the warning is once per process, not per run).
_warned: set[str] = set()


async def check_sessions(ctx: JobContext, scheduled_for: str | datetime | None = None) -> str:
    """Check the WhatsApp sessions at the gateway; today ``not_configured`` without
    ``WHATSAPP_GATEWAY_URL`` and ``not_implemented`` with it (the check comes with the WhatsApp channel)."""
    gateway = get_resources(ctx).settings.whatsapp_gateway_url
    when = str(scheduled_for) if scheduled_for else None
    if gateway is None:
        log.debug("whatsapp.sessions_skipped", reason=NOT_CONFIGURED, scheduled_for=when)
        return NOT_CONFIGURED
    if gateway not in _warned:
        _warned.add(gateway)
        log.warning("whatsapp.session_check_unavailable", gateway=gateway, reason=NOT_IMPLEMENTED)
    else:
        log.debug("whatsapp.sessions_skipped", reason=NOT_IMPLEMENTED, scheduled_for=when)
    return NOT_IMPLEMENTED


JOBS: tuple[JobSpec, ...] = (
    job(check_sessions, name=JobName.WHATSAPP_CHECK_SESSIONS, max_tries=1, timeout_s=60),
)
