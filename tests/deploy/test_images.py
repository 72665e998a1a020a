"""The Dockerfile and its build context: stages for every compose target, non-root runtimes with a
healthcheck, a context that holds what the COPY lines need, and packages that build as real wheels."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pathspec
import pytest
from pathspec.patterns.gitignore.basic import GitIgnoreBasicPattern

from tests.deploy.compose_support import BASE, effective_config
from tests.support import ROOT

DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"
PACKAGES = {
    "libs/common": "prosaas_common",
    "services/api": "prosaas_api",
    "services/calls": "prosaas_calls",
    "services/worker": "prosaas_worker",
    "services/scheduler": "prosaas_scheduler",
}


def stages() -> dict[str, list[str]]:
    """Stage name → its instruction lines (continuations joined)."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    result: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = re.match(r"FROM\s+(\S+)(?:\s+AS\s+(\S+))?", line, re.IGNORECASE)
        if match:
            current = result.setdefault(match.group(2) or match.group(1), [f"FROM {match.group(1)}"])
            continue
        if current is not None:
            current.append(line)
    return result


def parent(name: str, all_stages: dict[str, list[str]]) -> str:
    return all_stages[name][0].split()[1]


def lineage(name: str, all_stages: dict[str, list[str]]) -> list[str]:
    chain = [name]
    while chain[-1] in all_stages and parent(chain[-1], all_stages) in all_stages:
        chain.append(parent(chain[-1], all_stages))
    return chain


@pytest.fixture(scope="module")
def compose_services() -> dict[str, Any]:
    return effective_config([BASE])["services"]  # type: ignore[no-any-return]


def test_every_compose_build_target_is_a_non_root_runtime_stage(compose_services: dict[str, Any]) -> None:
    all_stages = stages()
    targets = {svc["build"]["target"] for svc in compose_services.values() if "build" in svc}
    assert targets == {"api", "calls", "worker", "scheduler", "migrate"}
    for target in targets:
        chain = lineage(target, all_stages)
        assert chain[-1] == "runtime", f"{target} must build on the runtime stage"
        # The user the image runs as: the last USER of the nearest stage (target first) that sets one.
        users = [
            [line for line in all_stages[stage] if line.startswith("USER ")][-1]
            for stage in chain
            if any(line.startswith("USER ") for line in all_stages[stage])
        ]
        assert users, target
        assert users[0] != "USER root", target
        assert not users[0].startswith("USER 0"), target
        assert not any(line.startswith(("RUN apt", "RUN pip")) for line in all_stages[target]), target


def test_long_running_targets_have_a_healthcheck_and_a_command() -> None:
    all_stages = stages()
    for target, probe in {
        "api": "5000/readyz",
        "calls": "5050/readyz",
        "worker": "prosaas_worker",
        "scheduler": "prosaas_scheduler",
    }.items():
        lines = " ".join(all_stages[target])
        assert "HEALTHCHECK" in lines, target
        assert probe in lines, target
        assert "CMD [" in lines, target
    assert 'CMD ["prosaas-migrate", "upgrade", "head"' in " ".join(all_stages["migrate"])


def test_build_installs_with_the_pinned_constraints() -> None:
    assert "PIP_CONSTRAINT=/src/constraints.txt" in " ".join(stages()["build-common"])


def context_files() -> set[str]:
    tracked = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    rules = (ROOT / ".dockerignore").read_text().splitlines()
    ignored = pathspec.PathSpec.from_lines(GitIgnoreBasicPattern, rules)  # last match wins, as in Docker
    return {path for path in tracked if not ignored.match_file(path)}


def test_build_context_holds_what_copy_needs_and_nothing_else() -> None:
    files = context_files()
    sources: list[str] = []
    for lines in stages().values():
        for line in lines:
            if line.startswith("COPY") and "--from=" not in line:
                sources.extend(part for part in line.split()[1:-1] if not part.startswith("--"))
    for source in sources:
        prefix = source.rstrip("/")
        assert any(f == prefix or f.startswith(prefix + "/") for f in files), f"{source} missing from context"
    assert not any(f.startswith(("tests/", "docs/", "bench/", ".venv/", ".git/", "frontend/")) for f in files)
    assert not any(f.endswith((".env", ".env.prod")) for f in files)


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("wheels")
    env = {**os.environ, "PIP_CONSTRAINT": str(ROOT / "constraints.txt")}
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), *PACKAGES],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    found = {}
    for wheel in out.glob("*.whl"):
        found[wheel.name.split("-")[0].replace("_", "-")] = wheel
    return found


def test_each_package_builds_a_wheel_with_its_code(wheels: dict[str, Path]) -> None:
    for folder, package in PACKAGES.items():
        dist = package.replace("_", "-")
        assert dist in wheels, f"{folder} did not build"
        names = zipfile.ZipFile(wheels[dist]).namelist()
        assert f"{package}/__init__.py" in names
        assert not any(name.startswith("tests/") for name in names)
    common = zipfile.ZipFile(wheels["prosaas-common"]).namelist()
    for module in ("migrate", "probe", "settings", "logging", "models/__init__", "web"):
        assert f"prosaas_common/{module}.py" in common
    for service in ("api", "calls", "worker", "scheduler"):
        assert f"prosaas_{service}/__main__.py" in zipfile.ZipFile(wheels[f"prosaas-{service}"]).namelist()
