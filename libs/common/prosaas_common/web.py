"""FastAPI plumbing shared by the HTTP services (api, calls): resources, request context, ops routes.

Install with the ``web`` extra. The ops routes are liveness, ``/readyz``, ``/version``, ``/metrics`` and
``/metrics.json``; the last two need ``METRICS_TOKEN`` or ``INTERNAL_SECRET`` as a bearer token.
"""

from __future__ import annotations

import hmac
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated

import uvicorn
from arq.connections import ArqRedis
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from prosaas_common import __version__
from prosaas_common.db import create_engine, create_session_factory, pool_status, unit_of_work
from prosaas_common.health import CoalescedReadiness, postgres_check, redis_check
from prosaas_common.logging import bind_context, clear_context, get_logger
from prosaas_common.metrics import UNMATCHED_ROUTE, HttpMetrics
from prosaas_common.redis import create_arq_pool, create_redis
from prosaas_common.settings import CommonSettings

REQUEST_ID_HEADER = "x-request-id"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:@-]{1,128}$")
log = get_logger("prosaas.http")


@dataclass
class ServiceResources:
    """What one HTTP service process holds open: the engine, its session factory and a Redis client."""

    service: str
    settings: CommonSettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    redis: Redis
    metrics: HttpMetrics
    readiness: CoalescedReadiness
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    _job_pool: ArqRedis | None = None

    async def job_pool(self) -> ArqRedis:
        """The arq pool for enqueueing jobs, connected on first use (the service starts without it)."""
        if self._job_pool is None:
            self._job_pool = await create_arq_pool(self.settings.redis_url)
        return self._job_pool

    @classmethod
    def open(cls, service: str, settings: CommonSettings, metrics: HttpMetrics) -> ServiceResources:
        engine = create_engine(settings, application_name=f"prosaas-{service}")
        redis = create_redis(settings.redis_url)
        metrics.watch_pool(lambda: pool_status(engine))
        readiness = CoalescedReadiness(
            {"postgres": postgres_check(engine), "redis": redis_check(redis)},
            timeout=settings.readiness_timeout,
            max_age=settings.readiness_cache_seconds,
        )
        return cls(
            service=service,
            settings=settings,
            engine=engine,
            sessions=create_session_factory(engine),
            redis=redis,
            metrics=metrics,
            readiness=readiness,
        )

    async def close(self) -> None:
        if self._job_pool is not None:
            await self._job_pool.aclose()
        await self.redis.aclose()
        await self.engine.dispose()


def request_id_from(headers: list[tuple[bytes, bytes]]) -> str:
    """The caller's X-Request-ID when it is a sane token, otherwise a fresh one."""
    for name, value in headers:
        if name == REQUEST_ID_HEADER.encode():
            candidate = value.decode("latin-1").strip()
            if _VALID_REQUEST_ID.match(candidate):
                return candidate
            break
    return uuid.uuid4().hex


class RequestContextMiddleware:
    """Binds ``request_id`` for the request's logs, echoes it, records metrics and the access event.

    Probe and scrape paths are logged at DEBUG so INFO stays quiet under health checks.
    """

    def __init__(self, app: ASGIApp, *, metrics: HttpMetrics, quiet_paths: frozenset[str]) -> None:
        self.app = app
        self.metrics = metrics
        self.quiet_paths = quiet_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(scope.get("headers", []))
        clear_context()
        bind_context(request_id=request_id)
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return

        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [
                    *[h for h in message["headers"] if h[0].lower() != REQUEST_ID_HEADER.encode()],
                    (REQUEST_ID_HEADER.encode(), request_id.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or UNMATCHED_ROUTE
            self.metrics.observe(scope["method"], template, status, elapsed)
            path = scope["path"]
            emit = log.debug if path in self.quiet_paths else log.info
            emit(
                "http.request",
                method=scope["method"],
                path=path,
                route=template,
                status=status,
                duration_ms=round(elapsed * 1000, 2),
            )
            clear_context()


def bearer_or_query_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.query_params.get("token", "")


def token_matches(presented: str, accepted: list[str]) -> bool:
    """Constant-time comparison against every accepted token (no early exit on the first match)."""
    presented_bytes = presented.encode()
    matched = False
    for token in accepted:
        matched |= hmac.compare_digest(presented_bytes, token.encode())
    return matched and bool(presented)


def build_ops_router(resources_of: Callable[[Request], ServiceResources], *, liveness_path: str) -> APIRouter:
    """Liveness, readiness, version and metrics routes. ``resources_of(request)`` gives the resources."""
    router = APIRouter(tags=["operations"])

    def require_metrics_token(request: Request) -> ServiceResources:
        resources = resources_of(request)
        if not token_matches(bearer_or_query_token(request), resources.settings.metrics_tokens()):
            raise HTTPException(
                status_code=401,
                detail="metrics need METRICS_TOKEN or INTERNAL_SECRET as a Bearer token or ?token=",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return resources

    @router.get(
        liveness_path, operation_id="ops_liveness", summary="Liveness: the process and its event loop answer"
    )
    async def liveness(request: Request) -> dict[str, str]:
        resources = resources_of(request)
        return {"status": "ok", "service": resources.service, "version": __version__}

    @router.get(
        "/readyz",
        operation_id="ops_readiness",
        summary="Readiness: Postgres SELECT 1 and Redis PING, each within 2 s (coalesced, ≤ 1 s old)",
    )
    async def readiness(request: Request) -> JSONResponse:
        resources = resources_of(request)
        report = await resources.readiness.check()
        body = {"service": resources.service, **report.as_dict()}
        return JSONResponse(body, status_code=200 if report.ready else 503)

    @router.get(
        "/version", operation_id="ops_version", summary="Version, git sha, build id, start time and uptime"
    )
    async def version(request: Request) -> dict[str, object]:
        resources = resources_of(request)
        return {
            "service": resources.service,
            "version": __version__,
            "git_sha": resources.settings.git_sha,
            "build": resources.settings.build_id,
            "started_at": resources.started_at.isoformat(),
            "uptime_s": round((datetime.now(UTC) - resources.started_at).total_seconds(), 3),
        }

    @router.get(
        "/metrics",
        operation_id="ops_metrics",
        summary="Prometheus metrics (token required)",
        response_class=Response,
    )
    async def prometheus_metrics(request: Request) -> Response:
        resources = require_metrics_token(request)
        return Response(resources.metrics.prometheus_text(), media_type="text/plain; version=0.0.4")

    @router.get(
        "/metrics.json",
        operation_id="ops_metrics_json",
        summary="Metrics summary with latency percentiles (token required)",
    )
    async def json_metrics(request: Request) -> dict[str, object]:
        resources = require_metrics_token(request)
        return resources.metrics.summary()

    return router


def create_service_app(
    *,
    service: str,
    settings: CommonSettings,
    title: str,
    liveness_path: str,
    docs_prefix: str = "",
) -> FastAPI:
    """A FastAPI app with the shared lifespan (engine, Redis), request context middleware and ops routes.

    Resources are opened at startup without connecting, so the service starts (and reports 503 on
    ``/readyz``) while Postgres or Redis are still down.
    """
    metrics = HttpMetrics(service)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        resources = ServiceResources.open(service, settings, metrics)
        app.state.resources = resources
        log.info("service.started", version=__version__, git_sha=settings.git_sha, env=settings.app_env.value)
        try:
            yield
        finally:
            await resources.close()
            log.info("service.stopped")

    app = FastAPI(
        title=title,
        version=__version__,
        lifespan=lifespan,
        docs_url=f"{docs_prefix}/docs",
        openapi_url=f"{docs_prefix}/openapi.json",
        redoc_url=None,
    )
    app.state.http_metrics = metrics  # services add their own collectors to its registry
    quiet = frozenset({liveness_path, "/readyz", "/metrics", "/metrics.json"})
    app.add_middleware(RequestContextMiddleware, metrics=metrics, quiet_paths=quiet)
    app.include_router(build_ops_router(resources_of, liveness_path=liveness_path))
    return app


async def db_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request; use it through :data:`DbSession`."""
    async with unit_of_work(resources_of(request).sessions) as session:
        yield session


# The request boundary owns the transaction: it commits after the endpoint returns and *before* the
# response is sent (scope="function"; the default scope would commit after responding, so a failed
# commit could be answered 200), and rolls back if the endpoint raises. Services below only flush().
DbSession = Annotated[AsyncSession, Depends(db_session, scope="function")]


def serve(app: FastAPI, *, host: str, port: int, forwarded_allow_ips: str) -> None:
    """Run ``app`` under uvicorn with our logging (no uvicorn log config, no access log of its own)."""
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=True,
        forwarded_allow_ips=forwarded_allow_ips,
        timeout_graceful_shutdown=20,
    )


def resources_of(request: Request) -> ServiceResources:
    resources: ServiceResources = request.app.state.resources
    return resources
