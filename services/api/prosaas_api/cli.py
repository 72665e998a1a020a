"""Administration commands: ``python -m prosaas_api admin create-system-admin --email …``, and
``python -m prosaas_api seed-demo`` (demo data for development, see :mod:`prosaas_api.seed`).

There is no default account and no unauthenticated endpoint that creates or resets one: the first
system admin is created here, with the password typed at a prompt (twice) or read from standard input
(``--password-stdin``, for automation).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import secrets
import sys

from arq.connections import ArqRedis
from sqlalchemy import func, select

from prosaas_api.auth.passwords import hash_password, password_problem
from prosaas_api.auth.schemas import LoginRequest
from prosaas_api.seed import BUSINESS_NAME, MAX_LEADS, SeedConflict, seed_demo
from prosaas_api.settings import ApiSettings
from prosaas_common.db import create_engine, create_session_factory, unit_of_work
from prosaas_common.models import User, UserRole
from prosaas_common.redis import create_arq_pool
from prosaas_common.settings import AppEnv, load_settings

EXIT_EXISTS = 1
EXIT_INVALID = 2


def add_admin_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    admin = commands.add_parser("admin", help="administration commands")
    actions = admin.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create-system-admin", help="create a platform (system) administrator")
    create.add_argument("--email", required=True)
    create.add_argument("--full-name", default="")
    create.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input (one line)"
    )


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Repeat password: ") != first:
        raise ValueError("the passwords differ")
    return first


async def create_system_admin(settings: ApiSettings, email: str, full_name: str, password: str) -> int:
    engine = create_engine(settings, application_name="prosaas-api-cli")
    try:
        async with unit_of_work(create_session_factory(engine)) as db:
            existing = await db.scalar(select(User.id).where(func.lower(User.email) == email.lower()))
            if existing is not None:
                print(f"an account with e-mail {email} already exists", file=sys.stderr)
                return EXIT_EXISTS
            user = User(
                email=email,
                full_name=full_name,
                role=UserRole.SYSTEM_ADMIN,
                password_hash=hash_password(password),
            )
            db.add(user)
            await db.flush()
            user_id = user.id
    finally:
        await engine.dispose()
    print(f"created system admin {email} (id {user_id})")
    return 0


def run_admin(args: argparse.Namespace) -> int:
    settings = load_settings(ApiSettings, "prosaas-api")
    try:
        email = LoginRequest(email=args.email, password="x").email
    except ValueError:
        print(f"not an e-mail address: {args.email!r}", file=sys.stderr)
        return EXIT_INVALID
    try:
        password = _read_password(args.password_stdin)
    except (ValueError, EOFError) as exc:
        print(f"password not set: {exc}", file=sys.stderr)
        return EXIT_INVALID
    problem = password_problem(password)
    if problem:
        print(f"password refused: it {problem}", file=sys.stderr)
        return EXIT_INVALID
    return asyncio.run(create_system_admin(settings, email, args.full_name.strip(), password))


def lead_count(raw: str) -> int:
    try:
        count = int(raw)
    except ValueError:
        count = -1
    if not 0 <= count <= MAX_LEADS:
        raise argparse.ArgumentTypeError(f"expected a whole number from 0 to {MAX_LEADS}, got {raw!r}")
    return count


def add_seed_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    seed = commands.add_parser(
        "seed-demo", help="create (or top up) the demo business, its users and leads (development)"
    )
    seed.add_argument("--leads", type=lead_count, default=200, help="demo leads to have (default 200)")
    seed.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the demo users' password from standard input (also resets existing demo users')",
    )


async def seed_demo_data(settings: ApiSettings, leads: int, password: str, reset_password: bool) -> int:
    engine = create_engine(settings, application_name="prosaas-api-seed")
    arq = await create_arq_pool(settings.redis_url)

    async def job_pool() -> ArqRedis:
        return arq

    try:
        result = await seed_demo(
            create_session_factory(engine),
            job_pool,
            password=password,
            reset_password=reset_password,
            leads=leads,
        )
    except SeedConflict as exc:
        print(f"seed refused: {exc}", file=sys.stderr)
        return EXIT_EXISTS
    finally:
        await arq.aclose(close_connection_pool=True)
        await engine.dispose()
    state = "created" if result.business_created else "already there"
    print(f"{BUSINESS_NAME} (business {result.business_id}): {state}")
    print(f"leads: {result.leads_created} created, {result.leads_total} in total")
    print("by status: " + ", ".join(f"{key} {count}" for key, count in sorted(result.statuses.items())))
    print(f"sign in at {settings.app_url} with:")
    for email in result.emails:
        print(f"  {email}")
    if result.password_set and not reset_password:
        print(f"password of {', '.join(result.password_set)}: {password}  (shown once; not stored anywhere)")
    elif not result.password_set:
        print("password: unchanged (set by the first run; reset it with --password-stdin)")
    return 0


def run_seed(args: argparse.Namespace) -> int:
    settings = load_settings(ApiSettings, "prosaas-api")
    if settings.app_env is AppEnv.PRODUCTION:
        print("seed-demo refuses to run with APP_ENV=production", file=sys.stderr)
        return EXIT_INVALID
    password = secrets.token_urlsafe(12)
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
        problem = password_problem(password)
        if problem:
            print(f"password refused: it {problem}", file=sys.stderr)
            return EXIT_INVALID
    return asyncio.run(seed_demo_data(settings, args.leads, password, args.password_stdin))
