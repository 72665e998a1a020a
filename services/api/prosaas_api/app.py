"""The api ASGI application."""

from __future__ import annotations

from fastapi import FastAPI

from prosaas_api.admin import router as admin_router
from prosaas_api.appointments import calendars as appointment_calendars
from prosaas_api.appointments import router as appointments_router
from prosaas_api.auth import router as auth_router
from prosaas_api.business import router as business_router
from prosaas_api.business import settings_router as business_settings_router
from prosaas_api.calls import outbound as outbound_calls
from prosaas_api.calls import router as calls_router
from prosaas_api.input_guards import install_input_guards
from prosaas_api.intake import public as intake_public
from prosaas_api.intake import router as intake_router
from prosaas_api.lead_io import router as lead_io_router
from prosaas_api.leads import notes as lead_notes
from prosaas_api.leads import router as leads_router
from prosaas_api.leads import statuses as lead_statuses
from prosaas_api.messaging import automations as message_automations
from prosaas_api.messaging import followups as message_followups
from prosaas_api.messaging import messages as lead_messages
from prosaas_api.messaging import templates as message_templates
from prosaas_api.reminders import notifications as reminder_notifications
from prosaas_api.reminders import router as reminders_router
from prosaas_api.settings import ApiSettings
from prosaas_api.users import router as users_router
from prosaas_api.webhooks import router as webhooks_router
from prosaas_common.settings import load_settings
from prosaas_common.web import create_service_app


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    settings = settings or load_settings(ApiSettings, "prosaas-api")
    app = create_service_app(
        service="api",
        settings=settings,
        title="ProSaaS API",
        liveness_path="/api/health",
        docs_prefix="/api",
    )
    install_input_guards(app)
    app.include_router(auth_router.router)
    app.include_router(admin_router.router)
    app.include_router(business_router.router)
    app.include_router(business_settings_router.router)
    app.include_router(users_router.router)
    app.include_router(intake_router.router)
    app.include_router(intake_public.router)
    # Fixed /api/leads/... paths before /api/leads/{lead_id}.
    app.include_router(lead_io_router)
    app.include_router(leads_router.router)
    app.include_router(lead_notes.router)
    app.include_router(lead_statuses.router)
    app.include_router(webhooks_router.router)
    app.include_router(appointment_calendars.router)
    app.include_router(appointments_router.router)
    app.include_router(reminders_router.router)
    app.include_router(reminder_notifications.router)
    app.include_router(message_automations.router)
    app.include_router(message_followups.router)
    app.include_router(message_templates.router)
    app.include_router(lead_messages.router)
    app.include_router(outbound_calls.router)  # before /api/calls/{call_sid}
    app.include_router(calls_router.router)
    return app
