"""WorkerConfig: WORKER_QUEUES parsing, the health interval bound and the instance id."""

from __future__ import annotations

import socket

import pytest

from prosaas_common.jobs import Queue
from prosaas_common.settings import ConfigError, build_settings
from prosaas_worker.settings import WorkerConfig, load_worker_config


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "WORKER_QUEUES",
        "WORKER_HEALTH_INTERVAL",
        "WORKER_MAX_JOBS",
        "WORKER_INSTANCE_ID",
        "APP_ENV",
    ):
        monkeypatch.delenv(name, raising=False)


def test_defaults_serve_every_queue() -> None:
    config = build_settings(WorkerConfig)
    assert config.worker_queues == [Queue.HIGH, Queue.DEFAULT, Queue.LOW]
    assert config.worker_max_jobs == 10
    assert config.worker_health_interval == 15
    assert config.worker_job_timeout == 300
    assert config.worker_shutdown_grace == 20.0


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("high,low", [Queue.HIGH, Queue.LOW]),
        (" high , LOW ,", [Queue.HIGH, Queue.LOW]),
        ("default", [Queue.DEFAULT]),
        ("low,high,low", [Queue.LOW, Queue.HIGH]),
        ("arq:queue:high", [Queue.HIGH]),
    ],
)
def test_worker_queues_from_env_is_a_comma_list(
    monkeypatch: pytest.MonkeyPatch, raw: str, expected: list[Queue]
) -> None:
    monkeypatch.setenv("WORKER_QUEUES", raw)
    assert build_settings(WorkerConfig).worker_queues == expected


def test_unknown_queue_names_the_variable_and_the_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKER_QUEUES", "high,urgent")
    with pytest.raises(ConfigError) as caught:
        build_settings(WorkerConfig)
    assert caught.value.lines == [
        "WORKER_QUEUES='high,urgent': unknown queue 'urgent' (choose from high, default, low)"
    ]


def test_empty_queue_list_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKER_QUEUES", " , ")
    with pytest.raises(ConfigError, match=r"WORKER_QUEUES=.*name at least one queue"):
        build_settings(WorkerConfig)


def test_queues_given_as_python_values() -> None:
    config = build_settings(WorkerConfig, worker_queues=["low", Queue.HIGH])
    assert config.worker_queues == [Queue.LOW, Queue.HIGH]


@pytest.mark.parametrize("interval", ["31", "3600"])
def test_health_interval_above_30_s_is_rejected(monkeypatch: pytest.MonkeyPatch, interval: str) -> None:
    monkeypatch.setenv("WORKER_HEALTH_INTERVAL", interval)
    with pytest.raises(ConfigError) as caught:
        build_settings(WorkerConfig)
    [line] = caught.value.lines
    assert line.startswith(f"WORKER_HEALTH_INTERVAL='{interval}': must be at most 30 s")


def test_health_interval_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKER_HEALTH_INTERVAL", "30")
    assert build_settings(WorkerConfig).worker_health_interval == 30
    monkeypatch.setenv("WORKER_HEALTH_INTERVAL", "0")
    with pytest.raises(ConfigError, match="WORKER_HEALTH_INTERVAL"):
        build_settings(WorkerConfig)


def test_entry_point_exits_2_with_one_line_per_problem(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WORKER_QUEUES", "nope")
    monkeypatch.setenv("WORKER_MAX_JOBS", "0")
    with pytest.raises(SystemExit) as caught:
        load_worker_config()
    assert caught.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    assert all(line.startswith("prosaas-worker: configuration error: ") for line in lines)
    assert any("WORKER_QUEUES='nope': unknown queue 'nope'" in line for line in lines)
    assert any(
        line.endswith("WORKER_MAX_JOBS='0': Input should be greater than or equal to 1") for line in lines
    )


def test_instance_id_defaults_to_the_host_name() -> None:
    assert build_settings(WorkerConfig).worker_instance_id == socket.gethostname()


@pytest.mark.parametrize("bad", ["two words", "host*", " "])
def test_instance_id_rejects_spaces_and_glob_characters(monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    monkeypatch.setenv("WORKER_INSTANCE_ID", bad)
    with pytest.raises(ConfigError) as caught:
        build_settings(WorkerConfig)
    assert caught.value.lines[0].startswith("WORKER_INSTANCE_ID=")
