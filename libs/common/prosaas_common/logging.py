"""structlog configuration shared by every service.

Our own events and the records of stdlib loggers (uvicorn, sqlalchemy, arq, httpx, …) go through one
renderer: JSON lines in production, a colored console in development. Context (request_id, job_id,
call_sid, business_id, …) is bound with :func:`bind_context` and travels with the asyncio task.
"""

from __future__ import annotations

import logging
import sys
from collections import OrderedDict
from typing import Any, TextIO

import structlog
from structlog.types import EventDict, Processor, WrappedLogger

from prosaas_common.settings import CommonSettings, LogFormat

# Library loggers whose INFO output is chatter; they speak at WARNING and above.
LIBRARY_LOGGERS = (
    "uvicorn",
    "uvicorn.error",
    "uvicorn.access",
    "sqlalchemy",
    "sqlalchemy.engine",
    "sqlalchemy.pool",
    "asyncpg",
    "arq",
    "arq.worker",
    "arq.connections",
    "httpx",
    "httpcore",
    "websockets",
    "asyncio",
    "alembic",
    "watchfiles",
)

get_logger = structlog.stdlib.get_logger
bind_context = structlog.contextvars.bind_contextvars
clear_context = structlog.contextvars.clear_contextvars
bound_context = structlog.contextvars.bound_contextvars


def _add_service(service: str) -> Processor:
    def processor(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
        event_dict.setdefault("service", service)
        return event_dict

    return processor


def configure_logging(
    service: str,
    level: str = "INFO",
    log_format: LogFormat = LogFormat.CONSOLE,
    stream: TextIO | None = None,
    library_level: str = "WARNING",
) -> None:
    """Route structlog and stdlib logging through one handler on ``stream`` (stdout by default)."""
    out = stream if stream is not None else sys.stdout
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_service(service),
        structlog.stdlib.ExtraAdder(),
    ]
    renderer: Processor
    if log_format is LogFormat.JSON:
        renderer = structlog.processors.JSONRenderer()
        tail: list[Processor] = [structlog.processors.format_exc_info]
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=out.isatty())
        tail = []

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.UnicodeDecoder(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *tail,
            renderer,
        ],
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    quiet = max(logging.getLevelName(level), logging.getLevelName(library_level))
    for name in LIBRARY_LOGGERS:
        lib = logging.getLogger(name)
        lib.handlers.clear()
        lib.propagate = True
        lib.setLevel(quiet)


def configure_from_settings(settings: CommonSettings, service: str, stream: TextIO | None = None) -> None:
    configure_logging(service, settings.log_level, settings.effective_log_format, stream=stream)


class RepeatedFailureLog:
    """Log a failure that repeats without flooding the output.

    Per key: the first occurrence is logged at WARNING; later ones at DEBUG and only every
    ``every``-th (5th, 10th, …). :meth:`recovered` forgets the key and logs one INFO line if the key
    had failed. Keys are kept in a bounded LRU so an unbounded key space cannot leak memory.
    """

    def __init__(self, logger: Any, every: int = 5, max_keys: int = 1024) -> None:
        self._logger = logger
        self._every = every
        self._max_keys = max_keys
        self._counts: OrderedDict[str, int] = OrderedDict()

    def occurrences(self, key: str) -> int:
        return self._counts.get(key, 0)

    def failure(self, key: str, event: str, **fields: Any) -> int:
        """Record one failure for ``key``; returns its running count (1 for the first)."""
        count = self._counts.pop(key, 0) + 1
        self._counts[key] = count
        while len(self._counts) > self._max_keys:
            self._counts.popitem(last=False)
        if count == 1:
            self._logger.warning(event, key=key, occurrences=count, **fields)
        elif count % self._every == 0:
            self._logger.debug(event, key=key, occurrences=count, **fields)
        return count

    def recovered(self, key: str, event: str, **fields: Any) -> None:
        count = self._counts.pop(key, 0)
        if count:
            self._logger.info(event, key=key, failures=count, **fields)
