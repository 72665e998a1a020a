"""The healthcheck probe used inside images: exit 0 only on HTTP 200."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from prosaas_common.probe import main
from tests.support import closed_port


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/readyz" else 503)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_200_passes(server: str) -> None:
    assert main([f"{server}/readyz"]) == 0


def test_503_fails(server: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([f"{server}/down"]) == 1
    assert capsys.readouterr().err.startswith("503 ")


def test_unreachable_and_bad_arguments_fail() -> None:
    assert main([f"http://127.0.0.1:{closed_port()}/readyz"]) == 1
    assert main(["file:///etc/passwd"]) == 1
    assert main([]) == 2
