"""``citeqa serve --workers N``: N processes serve the same bound sockets, and a light
supervisor keeps them running.

Why processes: a request is mostly Python (routing, validation, ranking, JSON) under one
interpreter lock, so one process keeps one core busy however many clients it has; a second
process runs a second request's Python on the second core.

How:
- The supervisor binds the sockets (api/cli.py) and never loads the model, torch or FAISS:
  workers are *spawned* (a fresh interpreter), never forked, so no worker inherits an
  OpenMP runtime that was started in its parent (libgomp hangs in a forked child).
- All workers start at once (their model loads overlap); worker 0 indexes the seeds (first
  start of a data directory) and the others wait until it has before they call themselves
  ready, so the seeds are indexed once and no worker answers before they are in.
- Each worker loads the model once and runs its own batcher; torch's threads (and OpenMP's,
  for FAISS) are the usable cores shared among the workers unless ``CITEQA_TORCH_THREADS``
  (or ``OMP_NUM_THREADS``) says otherwise, so N workers do not fight over the cores.
- Each new connection goes to the worker holding the fewest (they all accept on the same
  sockets; one ahead of the others leaves it to them: api/connection_balance.py); a
  connection stays with its worker.
- A worker that dies is started again (after a pause that grows while it keeps dying
  young); if none ever became ready, the configuration is broken and the supervisor exits
  with the worker's code instead of looping. SIGTERM or SIGINT to the supervisor is passed
  on as SIGTERM: each worker stops accepting, finishes its requests in flight, and exits;
  one still running after ``STOP_TIMEOUT_S`` is killed (one not yet ready, which serves no
  request, after ``NOT_READY_STOP_S``: a worker waiting for the seeds of a worker 0 that died
  would otherwise hold the exit up for the whole timeout). A worker whose supervisor dies
  (even by SIGKILL) gets SIGTERM from the kernel (``PR_SET_PDEATHSIG``) and stops too.

What stays per process (so differs between workers): the rate-limit buckets of anonymous
callers, and of keys in the embedded key store (keys.db; PostgreSQL's are shared), so a
limit of r requests/s lets through up to N x r; the responses kept for
``previous_response_id`` (a follow-up that reaches another worker gets 404 unless it
carries the conversation); ``GET /metrics`` (the counts of the worker that answered); the
embedding batcher and the store's caches. The store itself is shared: SQLite is the
source of truth, each worker's FAISS follows SQLite's ``data_version``, and the Tantivy
index has one owner at a time (index/tantivy_lexical.py), so a document acknowledged by
one worker is searchable from every worker at once.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import multiprocessing
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any, Callable

from citeqa.api.connection_balance import BalancedListener, ConnectionCounts
from citeqa.api.settings import Settings
from citeqa.index.encode_pool import cores  # numpy only: the supervisor loads neither torch nor FAISS

log = logging.getLogger("citeqa.serve")

STOP_TIMEOUT_S = 60.0  # a worker still busy this long after SIGTERM is killed
NOT_READY_STOP_S = 5.0  # ... or this long, when it never became ready (it has no request in flight)
YOUNG_S = 10.0  # a worker that dies younger than this is restarted after a growing pause
FIRST_PAUSE_S = 0.5
MAX_PAUSE_S = 30.0
PR_SET_PDEATHSIG = 1  # linux/prctl.h

Target = Callable[[Settings, list[socket.socket], int, Connection, int, ConnectionCounts], None]


def threads_per_worker(settings: Settings, workers: int) -> int:
    """torch threads of each worker: ``torch_threads`` when set, else the usable cores
    shared among the workers (at least one each)."""
    return settings.torch_threads or max(1, cores() // max(1, workers))


def serve_sockets(settings: Settings, sockets: list[socket.socket],
                  on_ready: Callable[[], None] | None = None, seed: bool = True) -> None:
    """Serve the app of ``settings`` on ``sockets`` in this process until SIGTERM/SIGINT
    (uvicorn's graceful shutdown: requests in flight finish). ``seed``: see create_app."""
    import uvicorn

    from citeqa.api.app import create_app
    from citeqa.api.head_limits import head_limited_protocol

    balanced = any(isinstance(s, BalancedListener) for s in sockets)
    config = uvicorn.Config(
        create_app(settings, on_ready=on_ready, seed=seed), log_level="info", log_config=None,
        access_log=False,  # our access log (api/observability.py) replaces uvicorn's
        http=head_limited_protocol(settings.header_timeout_s, settings.max_header_bytes),
        # uvloop accepts in C, past the listener's accept(): asyncio's loop calls it.
        loop="asyncio" if balanced else "auto",
    )
    uvicorn.Server(config).run(sockets=sockets)


def _die_with(parent: int) -> None:
    """SIGTERM this process when its parent dies (Linux); exit now if it already has."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the supervisor died before the prctl above
        os._exit(1)


def run_worker(settings: Settings, sockets: list[socket.socket], number: int, ready: Connection,
               parent: int, connections: ConnectionCounts) -> None:
    """A worker process: serve ``sockets`` and say ``number`` on ``ready`` once serving;
    ``connections``: every worker's open connections, this one's kept up to date."""
    from citeqa.api.memory import limit_malloc_arenas
    from citeqa.api.observability import configure_logging

    _die_with(parent)
    limit_malloc_arenas(settings.malloc_arenas)  # before any thread of this process exists
    configure_logging("INFO", json_logs=True)

    def tag(record: logging.LogRecord) -> bool:
        record.worker = number  # each JSON log line says which worker wrote it
        return True

    for handler in logging.getLogger().handlers:
        handler.addFilter(tag)

    def say_ready() -> None:
        connections.serving(number)  # new connections may now be left to this worker
        try:
            ready.send(number)
        except OSError:  # the supervisor is gone: PR_SET_PDEATHSIG stops us
            pass

    listeners: list[socket.socket] = [BalancedListener.wrap(s, connections, number) for s in sockets]
    serve_sockets(settings, listeners, on_ready=say_ready, seed=number == 0)


@dataclass
class _Worker:
    number: int
    process: BaseProcess
    ready: Connection | None  # the supervisor's end; None once read to its end
    started: float
    is_ready: bool = False


@dataclass
class Supervisor:
    """Runs ``workers`` processes of ``target`` over ``sockets`` until told to stop."""

    settings: Settings
    sockets: list[socket.socket]
    workers: int
    target: Target = run_worker
    stop_timeout_s: float = STOP_TIMEOUT_S
    _running: dict[int, _Worker] = field(default_factory=dict)
    _due: dict[int, float] = field(default_factory=dict)  # number -> when to start it again
    _pause: dict[int, float] = field(default_factory=dict)
    _stopping: bool = False
    _ever_ready: bool = False
    restarts: int = 0

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError("workers must be at least 1")
        self._context = multiprocessing.get_context("spawn")
        self._connections = ConnectionCounts(self.workers, self._context)
        threads = threads_per_worker(self.settings, self.workers)
        self.settings = self.settings.model_copy(update={"torch_threads": threads})
        # FAISS and MKL size their OpenMP teams from the environment the workers inherit
        # (set while they are started: this process itself never runs OpenMP).
        self._thread_env = {name: str(threads) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
                            if name not in os.environ}

    def run(self) -> int:
        """Start the workers, keep them running, stop them on SIGTERM/SIGINT. Returns the
        exit code: 0 after a requested stop, a worker's code if none ever became ready."""
        wake_r, wake_w = socket.socketpair()
        wake_w.setblocking(False)
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        old_wakeup = signal.set_wakeup_fd(wake_w.fileno(), warn_on_full_buffer=False)
        try:
            log.info("starting %d workers, %d torch thread(s) each", self.workers, self.settings.torch_threads)
            for number in range(self.workers):
                self._start(number)
            return self._supervise(wake_r)
        finally:
            self._stop_all()
            signal.set_wakeup_fd(old_wakeup)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            wake_r.close()
            wake_w.close()

    def stop(self) -> None:
        self._stopping = True

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if not self._stopping:
            log.info("%s: stopping the workers (requests in flight finish)", signal.Signals(signum).name)
        self._stopping = True

    def _start(self, number: int) -> None:
        reader, writer = self._context.Pipe(duplex=False)
        process = self._context.Process(
            target=self.target, name=f"citeqa-worker-{number}",
            args=(self.settings, self.sockets, number, writer, os.getpid(), self._connections))
        self._connections.absent(number)  # until it serves
        os.environ.update(self._thread_env)
        try:
            process.start()
        finally:
            for name in self._thread_env:
                os.environ.pop(name, None)
        writer.close()  # the worker holds its end: EOF here when it exits
        self._running[number] = _Worker(number, process, reader, time.monotonic())
        log.info("worker %d started (pid %d)", number, process.pid)

    def _supervise(self, wake: socket.socket) -> int:
        while not self._stopping:
            now = time.monotonic()
            for number, when in sorted(self._due.items()):
                if when <= now:
                    del self._due[number]
                    self._start(number)
            waits: list[Any] = [wake]
            for w in self._running.values():
                waits.append(w.process.sentinel)
                if w.ready is not None:
                    waits.append(w.ready)
            timeout = min([1.0, *(max(0.0, t - now) for t in self._due.values())])
            for ready in wait(waits, timeout):
                if ready is wake:
                    try:
                        wake.recv(64)
                    except BlockingIOError:
                        pass
            self._read_ready()
            failed = self._reap()
            if failed is not None:
                return failed
        return 0

    def _read_ready(self) -> None:
        for w in self._running.values():
            if w.ready is None or not w.ready.poll():
                continue
            try:
                w.ready.recv()
            except (EOFError, OSError):  # the worker exited without becoming ready
                w.ready.close()
                w.ready = None
                continue
            w.is_ready = True
            self._ever_ready = True
            log.info("worker %d ready (pid %s)", w.number, w.process.pid)

    def _reap(self) -> int | None:
        """Workers that exited: scheduled to start again, or the exit code to give up with."""
        for number, w in list(self._running.items()):
            if w.process.is_alive():
                continue
            w.process.join()
            if w.ready is not None:
                w.ready.close()
            del self._running[number]
            self._connections.absent(number)  # its connections died with it
            code = w.process.exitcode
            if self._stopping:
                continue
            if not self._ever_ready:
                log.error("worker %d exited with %s before any worker was ready: stopping", number, code)
                return code if code else 1
            lived = time.monotonic() - w.started
            if lived >= YOUNG_S:  # it served a while: start it again at once
                self._pause.pop(number, None)
                pause = 0.0
            else:  # dying young again and again (a bad disk, a crash on start): wait longer each time
                pause = min(MAX_PAUSE_S, 2 * self._pause[number]) if number in self._pause else FIRST_PAUSE_S
                self._pause[number] = pause
            self._due[number] = time.monotonic() + pause
            self.restarts += 1
            log.warning("worker %d (pid %s) exited with %s after %.1f s: starting it again in %.1f s",
                        number, w.process.pid, code, lived, pause)
        return None

    def _stop_all(self) -> None:
        """SIGTERM every worker (a graceful stop), then wait; kill what outlives the timeout."""
        self._stopping = True
        for w in self._running.values():
            if w.process.is_alive() and w.process.pid is not None:
                try:
                    os.kill(w.process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        signalled = time.monotonic()
        # Ready workers first: their requests in flight may need the whole timeout.
        for w in sorted(self._running.values(), key=lambda w: not w.is_ready):
            grace = self.stop_timeout_s if w.is_ready else min(self.stop_timeout_s, NOT_READY_STOP_S)
            w.process.join(max(0.0, signalled + grace - time.monotonic()))
            if w.process.is_alive():
                log.warning("worker %d (pid %s) still running %.0f s after SIGTERM: killed", w.number,
                            w.process.pid, grace)
                w.process.kill()
                w.process.join(10)
            if w.ready is not None:
                w.ready.close()
        self._running.clear()
