"""Run a real compose implementation's ``config`` over the project's compose files."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.support import ROOT

COMPOSE_DIR = ROOT / "deploy" / "compose"
BASE = COMPOSE_DIR / "docker-compose.yml"
PROD = COMPOSE_DIR / "docker-compose.prod.yml"
ENV_EXAMPLE = COMPOSE_DIR / ".env.prod.example"
STRONG_SECRET = "0123456789abcdef0123456789abcdef"


def compose_command() -> list[str]:
    """``docker compose`` (v2) if the plugin answers, else ``docker-compose``; fail loudly if neither."""
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True, check=False)
        if probe.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy:
        return [legacy]
    raise AssertionError("no compose implementation: install Debian's docker-compose (.ci/run does)")


def production_env_file(tmp: Path, **overrides: str | None) -> Path:
    """The example env file with real-looking secrets; ``None`` removes a variable."""
    lines = []
    values = {
        "INTERNAL_SECRET": STRONG_SECRET,
        "METRICS_TOKEN": STRONG_SECRET[::-1],
        "AUTH_SECRET": STRONG_SECRET + STRONG_SECRET,
        **overrides,
    }
    for line in ENV_EXAMPLE.read_text().splitlines():
        name = line.split("=", 1)[0] if "=" in line and not line.startswith("#") else None
        if name in values:
            if values[name] is not None:
                lines.append(f"{name}={values[name]}")
            continue
        lines.append(line)
    path = tmp / "env.prod"
    path.write_text("\n".join(lines) + "\n")
    return path


def run_config(
    files: list[Path], env_file: Path | None = None, profiles: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    args = [*compose_command(), "-p", "prosaas"]
    for file in files:
        args += ["-f", str(file)]
    if env_file is not None:
        args += ["--env-file", str(env_file)]
    for profile in profiles:
        args += ["--profile", profile]
    args.append("config")
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL")}
    return subprocess.run(args, capture_output=True, text=True, cwd=ROOT, env=env, timeout=60, check=False)


def effective_config(
    files: list[Path], env_file: Path | None = None, profiles: tuple[str, ...] = ()
) -> dict[str, Any]:
    done = run_config(files, env_file, profiles)
    assert done.returncode == 0, done.stderr
    parsed = yaml.safe_load(done.stdout)
    assert isinstance(parsed, dict)
    return parsed
