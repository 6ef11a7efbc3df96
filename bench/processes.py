"""Servers as real processes: a free local port, a server started on it, and the wait until
it answers. ``citeqa bench``, ``citeqa stress`` and the test suite (tests/support) start
``citeqa serve`` (or PostgreSQL, or llama.cpp) this way."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, NamedTuple

import httpx

from citeqa.bench.errors import BenchError

READY_TIMEOUT_S = 300.0


class ServerFailed(BenchError):
    """The server exited, or did not answer in time; the message ends with its log's tail."""


class RunningServer(NamedTuple):
    url: str
    pid: int
    ready_s: float  # from start to the first ready answer


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def citeqa_command() -> list[str]:
    """How to run this installation's ``citeqa``: the console script beside this Python,
    else the module."""
    script = Path(sys.executable).parent / "citeqa"
    return [str(script)] if script.exists() else [sys.executable, "-m", "citeqa.api.cli"]


def tail(path: Path | None, lines: int = 30) -> str:
    """The last ``lines`` lines of a log file ("" when there is none)."""
    if path is None or not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def wait_until_ready(proc: subprocess.Popen, ready_url: str, timeout_s: float, *, log_path: Path | None = None,
                     poll_s: float = 0.1, what: str = "citeqa serve") -> float:
    """Poll ``ready_url`` until it answers 200; returns the seconds that took. Raises
    ServerFailed if ``proc`` exits first or ``timeout_s`` passes."""
    started = time.perf_counter()
    while True:
        if proc.poll() is not None:
            raise ServerFailed(_with_log(f"{what} exited with {proc.returncode}", log_path))
        if time.perf_counter() - started > timeout_s:
            raise ServerFailed(_with_log(f"{what} not ready after {timeout_s:g} s", log_path))
        try:
            if httpx.get(ready_url, timeout=2).status_code == 200:
                return time.perf_counter() - started
        except httpx.TransportError:
            pass  # not listening yet
        time.sleep(poll_s)


def stop(proc: subprocess.Popen, timeout_s: float = 30) -> int | None:
    """SIGTERM (a graceful stop), then SIGKILL if it takes longer than ``timeout_s``."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    return proc.returncode


@contextmanager
def running_server(data_dir: Path, log_path: Path, timeout_s: float = READY_TIMEOUT_S,
                   workers: int = 1) -> Iterator[RunningServer]:
    """``citeqa serve --workers N`` on a free port over ``data_dir`` (no seeds), its output in
    ``log_path``, stopped on exit. Our environment is passed on (the caller may set
    CITEQA_* for it)."""
    port = free_port()
    env = {**os.environ, "CITEQA_SEEDS_DIR": "", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    url = f"http://127.0.0.1:{port}"
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            [*citeqa_command(), "serve", "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data_dir),
             "--workers", str(workers)],
            stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT, env=env)
        try:
            ready_s = wait_until_ready(proc, f"{url}/readyz", timeout_s, log_path=log_path)
            yield RunningServer(url, proc.pid, ready_s)
        finally:
            stop(proc)


def _with_log(message: str, log_path: Path | None) -> str:
    return f"{message}:\n{tail(log_path)}" if log_path is not None else message
