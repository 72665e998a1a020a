"""Worker subprocesses for tests: environment, the health command, and a reader of their JSON log lines."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from typing import Any

from tests.support import ROOT, service_env, wait_until

# Health keys name the instance; tests pin it instead of depending on the host name.
TEST_INSTANCE = "test-worker"


def worker_env(redis_url: str, database_url: str, **variables: str) -> dict[str, str]:
    """Environment of a worker process on the test Redis and database (``WORKER_QUEUES="high"`` …)."""
    extra = {
        "REDIS_URL": redis_url,
        "DATABASE_URL": database_url,
        "LOG_LEVEL": "INFO",
        "WORKER_INSTANCE_ID": TEST_INSTANCE,
    }
    extra.update({name.upper(): value for name, value in variables.items()})
    return service_env(extra)


async def run_health(env: dict[str, str], *queues: str, any_instance: bool = False) -> tuple[int, str]:
    """``python -m prosaas_worker health --queue …``: exit code and everything it printed."""
    args = ["-m", "prosaas_worker", "health", *(["--any-instance"] if any_instance else [])]
    for queue in queues:
        args += ["--queue", queue]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *args, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


class ProcessOutput:
    """Collects a process's output lines in a thread so a test can wait for a log event while it runs."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def text(self) -> str:
        return "\n".join(self.lines)

    def events(self, name: str) -> list[dict[str, Any]]:
        found = []
        for line in list(self.lines):
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("event") == name:
                found.append(record)
        return found

    async def wait_for_event(self, name: str, timeout: float = 15.0) -> dict[str, Any]:
        async def seen() -> bool:
            return bool(self.events(name))

        try:
            await wait_until(seen, timeout=timeout)
        except AssertionError:
            raise AssertionError(f"no {name} event; output so far:\n{self.text()}") from None
        return self.events(name)[0]

    async def wait_exit(self, timeout: float = 20.0) -> int:
        code = await asyncio.to_thread(self.proc.wait, timeout)
        await asyncio.to_thread(self._thread.join, 5)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._thread.join(5)
