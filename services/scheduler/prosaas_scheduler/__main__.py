"""Entry point: ``python -m prosaas_scheduler run`` and ``python -m prosaas_scheduler health``."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from prosaas_common.logging import configure_from_settings, get_logger
from prosaas_common.redis import create_arq_pool, create_redis
from prosaas_common.settings import load_settings
from prosaas_scheduler.health import check_health
from prosaas_scheduler.runner import Scheduler
from prosaas_scheduler.schedules import load_schedules
from prosaas_scheduler.settings import SchedulerSettings

SERVICE = "prosaas-scheduler"
log = get_logger("prosaas.scheduler")


async def run(settings: SchedulerSettings) -> None:
    """Run the loop until SIGTERM or SIGINT, then release the lock and exit."""
    try:
        schedules = load_schedules(settings.scheduler_schedules)
    except ValueError as exc:
        print(f"{SERVICE}: configuration error: SCHEDULER_SCHEDULES: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    redis = create_redis(settings.redis_url)
    # arq's create_pool retries the connection a few times, then raises; the process manager restarts us.
    pool = await create_arq_pool(settings.redis_url)
    try:
        scheduler = Scheduler.from_settings(settings, redis, pool, schedules)
        await scheduler.run(stop)
    finally:
        await pool.aclose()
        await redis.aclose()


async def health(settings: SchedulerSettings) -> int:
    """Exit code 0 if this instance's heartbeat exists (prints its role), else 1 with one reason line."""
    redis = create_redis(settings.redis_url)
    try:
        report = await check_health(redis, settings.scheduler_instance_id, timeout=settings.readiness_timeout)
    finally:
        await redis.aclose()
    print(report.message, file=sys.stdout if report.healthy else sys.stderr)
    return report.exit_code


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog=SERVICE, description="ProSaaS periodic scheduler (enqueue only)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="run the scheduler loop until SIGTERM/SIGINT")
    commands.add_parser("health", help="exit 0 if this instance's loop is alive (prints leader/standby)")
    args = parser.parse_args(argv)
    settings = load_settings(SchedulerSettings, SERVICE)
    if args.command == "run":
        configure_from_settings(settings, "scheduler")
        asyncio.run(run(settings))
    else:
        raise SystemExit(asyncio.run(health(settings)))


if __name__ == "__main__":
    main()
