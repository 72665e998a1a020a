"""Administration commands: ``python -m prosaas_api admin create-system-admin --email …``.

There is no default account and no unauthenticated endpoint that creates or resets one: the first
system admin is created here, with the password typed at a prompt (twice) or read from standard input
(``--password-stdin``, for automation).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys

from sqlalchemy import func, select

from prosaas_api.auth.passwords import hash_password, password_problem
from prosaas_api.auth.schemas import LoginRequest
from prosaas_api.settings import ApiSettings
from prosaas_common.db import create_engine, create_session_factory, unit_of_work
from prosaas_common.models import User, UserRole
from prosaas_common.settings import load_settings

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
