"""Job registration: a domain module lists its jobs as :class:`JobSpec`; the workers run them all.

Add a domain by writing ``prosaas_worker/jobs/<domain>.py`` with ``JOBS = (job(fn), ...)`` and
adding it to :data:`prosaas_worker.jobs.ALL_JOBS`. The job's name (the function name unless given)
is what producers enqueue, so it must be unique and stable.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from arq.worker import Function, func

from prosaas_worker.instrument import JobFunction, instrument


@dataclass(frozen=True)
class JobSpec:
    """One job function and its arq options (None = the worker's default)."""

    name: str
    coroutine: JobFunction
    max_tries: int | None = None
    timeout_s: float | None = None
    keep_result_s: float | None = None


def job(
    coroutine: JobFunction,
    *,
    name: str | None = None,
    max_tries: int | None = None,
    timeout_s: float | None = None,
    keep_result_s: float | None = None,
) -> JobSpec:
    return JobSpec(name or coroutine.__name__, coroutine, max_tries, timeout_s, keep_result_s)


def arq_functions(specs: Iterable[JobSpec]) -> list[Function]:
    """arq functions for ``specs``, each wrapped by :func:`instrument`; duplicate names are refused."""
    functions: list[Function] = []
    seen: set[str] = set()
    for spec in specs:
        if spec.name in seen:
            raise ValueError(f"job name {spec.name!r} is registered twice")
        seen.add(spec.name)
        functions.append(
            func(
                instrument(spec.name, spec.coroutine, spec.max_tries),
                name=spec.name,
                max_tries=spec.max_tries,
                timeout=spec.timeout_s,
                keep_result=spec.keep_result_s,
            )
        )
    return functions
