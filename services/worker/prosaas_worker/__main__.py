"""Command line: ``python -m prosaas_worker run``, ``health [--queue …]``, ``dead-letters [--limit N]``
and ``rerun DEAD_LETTER_ID``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

import uvloop

from prosaas_common.jobs import Queue
from prosaas_common.logging import configure_from_settings
from prosaas_worker.settings import load_worker_config


def _queue_arg(value: str) -> list[Queue]:
    try:
        return [Queue.from_name(part) for part in value.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="prosaas-worker", description="ProSaaS background job worker")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="serve the queues in WORKER_QUEUES until SIGTERM/SIGINT")
    health = commands.add_parser(
        "health", help="exit 0 only if a worker of every asked queue wrote its health key recently"
    )
    health.add_argument(
        "--queue",
        action="append",
        type=_queue_arg,
        metavar="high|default|low",
        help="queue to check (repeat or comma-separate; default: the queues in WORKER_QUEUES)",
    )
    health.add_argument(
        "--any-instance",
        action="store_true",
        help="pass if any worker instance of the queue is alive (default: this WORKER_INSTANCE_ID only)",
    )
    dead = commands.add_parser("dead-letters", help="list the latest jobs that failed for good")
    dead.add_argument("--limit", type=int, default=20)
    rerun = commands.add_parser("rerun", help="enqueue a dead job again with the same arguments")
    rerun.add_argument("dead_letter_id", type=int)
    return parser


def _dead_letters(limit: int) -> int:
    from prosaas_worker.dead_letters import list_dead_letters

    for row in asyncio.run(list_dead_letters(load_worker_config(), max(1, limit))):
        rerun = f" rerun {row.rerun_at:%Y-%m-%d %H:%M}" if row.rerun_at else ""
        print(
            f"{row.id}\t{row.created_at:%Y-%m-%d %H:%M:%S}\t{row.queue or '-'}\t{row.job_name}"
            f"\ttries={row.tries}\targs={row.args}\t{row.error[:200]}{rerun}"
        )
    return 0


def _rerun(dead_letter_id: int) -> int:
    from prosaas_worker.dead_letters import rerun

    job_id = asyncio.run(rerun(load_worker_config(), dead_letter_id))
    if job_id is None:
        print(f"no dead letter {dead_letter_id}", file=sys.stderr)
        return 1
    print(f"enqueued again as {job_id}")
    return 0


def _run() -> int:
    from prosaas_worker.runner import run_workers  # imported here: keeps `health` light

    settings = load_worker_config()
    configure_from_settings(settings, "worker")
    # uvloop: the message dispatcher's HTTP client is CPU-bound at volume (bench/dispatch.py:
    # about a quarter more messages per second than the default loop).
    return uvloop.run(run_workers(settings))


def _health(asked: list[list[Queue]] | None, any_instance: bool) -> int:
    from prosaas_worker.health import check_queues

    settings = load_worker_config()
    queues: list[Queue] = []
    for queue in [q for group in asked or [] for q in group] or settings.worker_queues:
        if queue not in queues:
            queues.append(queue)
    from prosaas_worker.health import ANY_INSTANCE

    instance = ANY_INSTANCE if any_instance else settings.worker_instance_id
    report = asyncio.run(
        check_queues(settings.redis_url, queues, instance, timeout=settings.readiness_timeout)
    )
    for line in report.lines():
        print(line, file=sys.stdout if line.startswith("ok") else sys.stderr)
    return 0 if report.ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "run":
        return _run()
    if args.command == "dead-letters":
        return _dead_letters(args.limit)
    if args.command == "rerun":
        return _rerun(args.dead_letter_id)
    return _health(args.queue, args.any_instance)


if __name__ == "__main__":
    sys.exit(main())
