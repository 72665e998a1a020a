"""scripts/dcprod.sh, ensure_docker_network.sh, wait_healthy.sh and deploy.sh against the fake ``docker``.

What reaches Docker is read from the fake's invocation log: the exact arguments and their order.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.deploy.scripts_support import (
    COMPOSE_GLOBALS,
    FAKE_DOCKER,
    SCRIPTS,
    FakeDocker,
    ReadyzServer,
    Run,
)
from tests.support import ROOT


def compose_prefix(fake: FakeDocker) -> list[str]:
    return ["compose", *COMPOSE_GLOBALS, "--env-file", str(fake.env_file)]


@pytest.mark.parametrize(
    "script",
    ["dcprod.sh", "ensure_docker_network.sh", "validate_production.sh", "wait_healthy.sh", "deploy.sh"],
)
def test_scripts_are_strict_bash_with_usage(fake: FakeDocker, script: str) -> None:
    path = SCRIPTS / script
    text = path.read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "\nset -euo pipefail\n" in text
    assert path.stat().st_mode & 0o111
    run = fake.run(script, "-h")
    assert run.returncode == 0, run.output
    assert f"{script} — " in run.stdout
    assert "Exit status" in run.stdout
    assert run.invocations == []


def test_scripts_are_shellcheck_clean() -> None:
    assert shutil.which("shellcheck"), "shellcheck is missing: apt-get install shellcheck (.ci/run does)"
    scripts = sorted(str(p) for p in [*SCRIPTS.glob("*.sh"), *SCRIPTS.glob("lib/*.sh")])
    # -x follows `source scripts/lib/common.sh` (the directive path is relative to the repository root).
    command = ["shellcheck", "-x", "--severity=style", *scripts, str(FAKE_DOCKER)]
    result = subprocess.run(command, capture_output=True, text=True, check=False, cwd=SCRIPTS.parent)
    assert result.returncode == 0, result.stdout + result.stderr


# ------------------------------------------------------------------------------------------- dcprod.sh


def test_dcprod_passes_project_files_env_file_and_forwards_arguments_exactly(
    fake: FakeDocker, tmp_path: Path
) -> None:
    args = ["--profile", "multi-worker", "up", "-d", "--scale", "worker=0"]
    run = fake.run("dcprod.sh", *args, cwd=tmp_path)
    assert run.returncode == 0, run.output
    assert [i["args"] for i in run.invocations] == [["compose", "version"], [*compose_prefix(fake), *args]]
    assert {i["cwd"] for i in run.invocations} == {str(ROOT)}

    tricky = ["exec", "worker", "sh", "-c", "echo 'a b' \"$HOME\" \\ * ;", ""]
    run = fake.run("dcprod.sh", *tricky, cwd=tmp_path)
    assert run.invocations[-1]["args"] == [*compose_prefix(fake), *tricky]


def test_dcprod_passes_the_command_output_and_status_through(fake: FakeDocker) -> None:
    run = fake.run("dcprod.sh", "run", "--rm", "migrate", scenario="deploy_migrate_fails")
    assert run.returncode == 1
    assert '"event": "migrate.failed"' in run.stdout


def test_dcprod_project_name_and_relative_env_file(fake: FakeDocker, tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "prod.env").write_text("LOG_LEVEL=INFO\n")
    run = fake.run(
        "dcprod.sh",
        "ps",
        cwd=tmp_path,
        env={"COMPOSE_PROJECT_NAME": "prosaas-staging", "PROSAAS_ENV_FILE": "conf/prod.env"},
    )
    assert run.returncode == 0, run.output
    args = run.invocations[-1]["args"]
    assert args[1:3] == ["-p", "prosaas-staging"]
    assert args[7:10] == ["--env-file", str(tmp_path / "conf" / "prod.env"), "ps"]


def test_dcprod_falls_back_to_docker_compose(fake: FakeDocker) -> None:
    run = fake.run("dcprod.sh", "ps", "--format", "json", scenario="compose_v1")
    assert run.returncode == 0, run.output
    assert [(i["prog"], i["args"]) for i in run.invocations] == [
        ("docker", ["compose", "version"]),
        ("docker-compose", [*compose_prefix(fake)[1:], "ps", "--format", "json"]),
    ]


def test_dcprod_uses_DOCKER_COMPOSE_without_probing(fake: FakeDocker) -> None:
    run = fake.run("dcprod.sh", "config", env={"DOCKER_COMPOSE": "docker-compose"})
    assert [(i["prog"], i["args"]) for i in run.invocations] == [
        ("docker-compose", [*compose_prefix(fake)[1:], "config"])
    ]
    run = fake.run("dcprod.sh", "config", env={"DOCKER_COMPOSE": "docker compose"})
    assert [i["args"] for i in run.invocations] == [[*compose_prefix(fake), "config"]]


def test_dcprod_refuses_without_env_file(fake: FakeDocker, tmp_path: Path) -> None:
    missing = tmp_path / "nope.env"
    run = fake.run("dcprod.sh", "up", "-d", env={"PROSAAS_ENV_FILE": str(missing)})
    assert run.returncode == 2
    assert run.invocations == []
    assert run.stdout == ""
    lines = run.stderr.splitlines()
    assert len(lines) == 1
    assert str(missing) in lines[0]
    assert "copy deploy/compose/.env.prod.example" in lines[0]


def test_dcprod_default_env_file_is_in_deploy_compose(fake: FakeDocker) -> None:
    run = fake.run("dcprod.sh", "ps", env={"PROSAAS_ENV_FILE": ""})
    if (ROOT / "deploy" / "compose" / ".env.prod").exists():
        assert run.invocations[-1]["args"][7:9] == ["--env-file", "deploy/compose/.env.prod"]
    else:
        assert run.returncode == 2
        assert "env file deploy/compose/.env.prod not found" in run.stderr


# ---------------------------------------------------------------------------- ensure_docker_network.sh


def test_network_is_created_when_missing_and_left_alone_after(fake: FakeDocker) -> None:
    state = fake.new_state()
    first = fake.run("ensure_docker_network.sh", state=state)
    assert first.returncode == 0, first.output
    assert [i["args"] for i in first.invocations] == [
        ["network", "inspect", "prosaas-net"],
        ["network", "create", "--driver", "bridge", "prosaas-net"],
    ]
    assert first.stdout == "network prosaas-net: created\n"

    second = fake.run("ensure_docker_network.sh", state=state)
    assert second.returncode == 0
    assert [i["args"] for i in second.invocations] == [["network", "inspect", "prosaas-net"]]
    assert second.stdout == "network prosaas-net: already exists, nothing to do\n"


def test_existing_network_is_not_recreated(fake: FakeDocker) -> None:
    run = fake.run(
        "ensure_docker_network.sh", scenario="network_present", env={"PROSAAS_NETWORK": "edge-net"}
    )
    assert run.returncode == 0
    assert [i["args"] for i in run.invocations] == [["network", "inspect", "edge-net"]]
    assert "edge-net: already exists" in run.stdout


def test_network_name_argument_and_create_failure(fake: FakeDocker) -> None:
    run = fake.run("ensure_docker_network.sh", "other-net", scenario="network_create_fails")
    assert run.returncode == 1
    assert [i["args"][:2] for i in run.invocations] == [
        ["network", "inspect"],
        ["network", "create"],
        ["network", "inspect"],
    ]
    assert run.invocations[1]["args"][-1] == "other-net"
    assert (
        "network other-net: could not be created: Error response from daemon: could not find an available"
        in run.stderr
    )


# ------------------------------------------------------------------------------------- wait_healthy.sh


def test_wait_healthy_returns_at_once_when_healthy(fake: FakeDocker) -> None:
    run = fake.run("wait_healthy.sh", env={"DOCKER_COMPOSE": "docker compose"})
    assert run.returncode == 0, run.output
    assert run.compose_calls() == [["ps", "--all", "--format", "json"]]
    assert run.invocations[0]["args"][9:11] == ["--profile", "multi-worker"]
    assert "all services healthy" in run.stdout
    assert run.seconds < 2


def test_wait_healthy_with_no_time_left_polls_once(fake: FakeDocker) -> None:
    run = fake.run(
        "wait_healthy.sh",
        scenario="deploy_never_healthy",
        env={"DOCKER_COMPOSE": "docker compose", "DEPLOY_HEALTH_TIMEOUT": "0"},
    )
    assert run.returncode == 1
    assert len(run.compose_calls()) == 1
    assert "timed out after 0s" in run.stderr


# ------------------------------------------------------------------------------------------- deploy.sh


def run_deploy(fake: FakeDocker, scenario: str, base_url: str, **env: str) -> Run:
    return fake.run(
        "deploy.sh",
        scenario=scenario,
        env={"VALIDATE_BASE_URL": base_url, "DEPLOY_HEALTH_INTERVAL": "0.05", **env},
    )


def test_deploy_runs_every_step_in_order(fake: FakeDocker, ready: ReadyzServer) -> None:
    run = run_deploy(fake, "clean", ready.url)
    assert run.returncode == 0, run.output
    steps = run.subcommands()
    assert steps[:7] == ["network inspect", "network create", "build", "run", "up", "ps", "ps"]
    assert steps[7:] == ["config"] + ["logs"] * 7
    calls = run.compose_calls()
    assert ["run", "--rm", "migrate"] in calls
    assert ["up", "-d"] in calls
    assert ["build"] in calls
    assert "summary: 18 passed, 0 warnings, 0 failed" in run.stdout
    assert run.stdout.rstrip().endswith("deploy: done")


def test_deploy_waits_until_healthy(fake: FakeDocker, ready: ReadyzServer) -> None:
    run = run_deploy(fake, "deploy_becomes_healthy", ready.url)
    assert run.returncode == 0, run.output
    steps = run.subcommands()
    assert steps[4:9] == ["up", "ps", "ps", "ps", "ps"]  # three polls, then validate's own ps
    assert "waiting for: prosaas-api: prosaas-prosaas-api-1 starting" in run.stdout
    assert "all services healthy" in run.stdout


def test_deploy_stops_before_up_when_migration_fails(fake: FakeDocker, ready: ReadyzServer) -> None:
    run = run_deploy(fake, "deploy_migrate_fails", ready.url)
    assert run.returncode == 1
    assert run.subcommands() == ["network inspect", "network create", "build", "run"]
    assert "deploy: migration failed: nothing was started" in run.stderr
    assert "DuplicateColumnError" in run.stdout


def test_deploy_health_timeout_names_the_unhealthy_services(fake: FakeDocker, ready: ReadyzServer) -> None:
    run = run_deploy(
        fake, "deploy_never_healthy", ready.url, DEPLOY_HEALTH_TIMEOUT="1", DEPLOY_HEALTH_INTERVAL="0.2"
    )
    assert run.returncode == 1
    assert "wait_healthy: timed out after 1s; not healthy:" in run.stderr
    assert "prosaas-calls: prosaas-prosaas-calls-1 unhealthy" in run.stderr
    assert "worker: prosaas-worker-1 starting" in run.stderr
    assert "services did not become healthy" in run.stderr
    steps = run.subcommands()
    assert "config" not in steps  # validation never ran
    assert 3 <= steps.count("ps") <= 8
    assert run.seconds < 4


def test_deploy_multi_worker(fake: FakeDocker, ready: ReadyzServer) -> None:
    run = run_deploy(fake, "multi_worker", ready.url, PROSAAS_MULTI_WORKER="1")
    assert run.returncode == 0, run.output
    up = next(i["args"] for i in run.invocations if "up" in i["args"])
    assert up == [*compose_prefix(fake), "--profile", "multi-worker", "up", "-d", "--scale", "worker=0"]
    build = next(i["args"] for i in run.invocations if "build" in i["args"])
    assert build[-3:] == ["--profile", "multi-worker", "build"]


def test_deploy_fails_when_validation_fails(fake: FakeDocker, ready: ReadyzServer) -> None:
    run = run_deploy(fake, "fake_error_websocket", ready.url)
    assert run.returncode == 1
    assert run.rows()["fake errors in logs"][0] == "FAIL"
    assert "deploy: validation failed" in run.stderr


def test_deploy_without_env_file_starts_nothing(
    fake: FakeDocker, ready: ReadyzServer, tmp_path: Path
) -> None:
    run = run_deploy(fake, "clean", ready.url, PROSAAS_ENV_FILE=str(tmp_path / "missing.env"))
    assert run.returncode == 2
    assert "copy deploy/compose/.env.prod.example" in run.stderr
    assert run.subcommands() == ["network inspect", "network create"]
