"""Real servers for the tests: ``citeqa serve`` as a subprocess on a free port (the port and
the wait until it answers come from citeqa.bench.processes, as the benches' servers do)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from citeqa.bench.processes import ServerFailed, free_port, wait_until_ready
from tests.support.corpus import SEEDS_DIR

__all__ = ["CITEQA", "READY_TIMEOUT_S", "Server", "free_port"]

CITEQA = Path(sys.executable).parent / "citeqa"
# A server loads the model (two workers: two at once) on two cores other tests may be using.
READY_TIMEOUT_S = 300


def _fail_on_500(response: httpx.Response) -> None:
    # Every response in these tests must be a deliberate one: a 500 is always a bug.
    assert response.status_code != 500, f"{response.request.method} {response.request.url} gave a 500"


class Server:
    """One ``citeqa serve`` process on a data directory; start() again for a restart."""

    def __init__(self, data_dir: Path, workdir: Path, env: dict[str, str] | None = None):
        self.data_dir = data_dir
        self.workdir = workdir
        self.extra_env = dict(env or {})
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.starts = 0
        self.log_path: Path | None = None
        self._log = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self, **overrides: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CITEQA_")}
        env.update(HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", CITEQA_SEEDS_DIR=str(SEEDS_DIR))
        env.update(self.extra_env)
        env.update(overrides)
        return env

    def start(self, **env_overrides: str) -> "Server":
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.port = free_port()
        self.starts += 1
        self.log_path = self.workdir / f"serve-{self.port}-{self.starts}.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [str(CITEQA), "serve", "--port", str(self.port), "--data-dir", str(self.data_dir)],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            env=self.env(**env_overrides), cwd=self.workdir,  # cwd: no stray .env file is read
        )
        self.wait_ready()
        return self

    def wait_ready(self) -> None:
        assert self.proc is not None
        try:
            wait_until_ready(self.proc, f"{self.url}/readyz", READY_TIMEOUT_S, poll_s=0.2)
        except ServerFailed as exc:
            pytest.fail(f"{exc}:\n{self.log()}")  # the whole log: a test failure is read once

    def client(self, timeout: float = 60) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=timeout, event_hooks={"response": [_fail_on_500]})

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int | None:
        """Send ``sig`` to the server process and reap it; returns its exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                pytest.fail(f"citeqa serve ignored signal {sig} for {timeout} s:\n{self.log()}")
        if self._log:
            self._log.close()
            self._log = None
        return self.proc.returncode

    def shut_down(self) -> None:
        """SIGTERM: a graceful stop (uvicorn re-raises the signal after shutting down)."""
        code = self.stop(signal.SIGTERM)
        assert code in (0, -signal.SIGTERM), f"exit {code}:\n{self.log()}"
        assert "Application shutdown complete" in self.log(), self.log()

    def kill_quietly(self) -> None:
        """Teardown: whatever state the test left, leave no process behind."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if self._log:
            self._log.close()
            self._log = None

    def children(self) -> list[int]:
        """Pids whose parent is the server (uvicorn workers or reloaders would show here)."""
        kids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.proc.pid:
                kids.append(int(stat.parent.name))
        return kids


@contextmanager
def serving(workdir: Path, env: dict[str, str] | None = None) -> Iterator[Server]:
    """``citeqa serve`` on ``workdir/data``, started; killed on exit, after which its log
    must hold no traceback (every failure a test provokes must be a deliberate answer)."""
    srv = Server(workdir / "data", workdir, env=env)
    try:
        yield srv.start()
    finally:
        srv.kill_quietly()
    assert "Traceback" not in srv.log(), srv.log()
