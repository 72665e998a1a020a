"""Run the calls service: `python -m prosaas_calls` (listens on CALLS_HOST:CALLS_PORT, default 5050)."""

from __future__ import annotations

from prosaas_calls.app import create_app
from prosaas_calls.settings import CallsSettings
from prosaas_common.logging import configure_from_settings
from prosaas_common.settings import load_settings
from prosaas_common.web import serve


def main() -> None:
    settings = load_settings(CallsSettings, "prosaas-calls")
    configure_from_settings(settings, "calls")
    serve(
        create_app(settings),
        host=settings.calls_host,
        port=settings.calls_port,
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )


if __name__ == "__main__":
    main()
