"""The calls ASGI application."""

from __future__ import annotations

from fastapi import FastAPI

from prosaas_calls import outbound, recording, sms_status, voice, ws_health
from prosaas_calls.call_metrics import CallMetrics
from prosaas_calls.call_runner import settings_provider_factory
from prosaas_calls.media import stream
from prosaas_calls.settings import CallsSettings
from prosaas_common.settings import load_settings
from prosaas_common.web import create_service_app


def create_app(settings: CallsSettings | None = None) -> FastAPI:
    settings = settings or load_settings(CallsSettings, "prosaas-calls")
    app = create_service_app(
        service="calls",
        settings=settings,
        title="ProSaaS Calls",
        liveness_path="/health",
        docs_prefix="",
    )
    app.include_router(ws_health.router)
    app.include_router(sms_status.router)
    app.include_router(voice.router)
    app.include_router(outbound.router)
    app.include_router(stream.router)
    app.include_router(recording.router)  # with its lifespan: the Twilio Voice client
    app.state.provider_factory = settings_provider_factory(settings)
    app.state.call_metrics = CallMetrics(app.state.http_metrics.registry)
    return app
