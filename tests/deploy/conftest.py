"""Fixtures of the deploy suite: the live nginx instances and the services behind them, the fake
``docker`` that replays recorded outputs, and a local /readyz server standing in for nginx."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.deploy.nginx_fixtures import degraded, front, services, tls
from tests.deploy.scripts_support import FakeDocker, ReadyzServer, readyz_server

__all__ = ["degraded", "front", "services", "tls"]


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> FakeDocker:
    return FakeDocker(tmp_path_factory.mktemp("fake-docker"))


@pytest.fixture(scope="module")
def ready() -> Iterator[ReadyzServer]:
    with readyz_server() as server:
        yield server
