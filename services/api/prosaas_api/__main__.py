"""The api service's command line.

``python -m prosaas_api`` (or ``serve``) runs the service on API_HOST:API_PORT (default 5000);
``python -m prosaas_api admin create-system-admin --email …`` creates the first platform admin;
``python -m prosaas_api seed-demo [--leads 200] [--password-stdin]`` creates the demo business.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from prosaas_api.app import create_app
from prosaas_api.cli import add_admin_commands, add_seed_command, run_admin, run_seed
from prosaas_api.settings import ApiSettings
from prosaas_common.logging import configure_from_settings
from prosaas_common.settings import load_settings
from prosaas_common.web import serve


def serve_api() -> int:
    settings = load_settings(ApiSettings, "prosaas-api")
    configure_from_settings(settings, "api")
    serve(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="prosaas-api", description="ProSaaS REST API")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="run the api service (the default)")
    add_admin_commands(commands)
    add_seed_command(commands)
    args = parser.parse_args(argv)
    if args.command == "admin":
        return run_admin(args)
    if args.command == "seed-demo":
        return run_seed(args)
    return serve_api()


if __name__ == "__main__":
    sys.exit(main())
