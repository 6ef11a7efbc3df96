"""How the server's process allocates memory: fewer malloc arenas than glibc's default,
and freed memory given back to the system when the server is idle.

glibc gives a thread that finds the arenas in use a new arena, up to 8 per core; a server
whose requests run on dozens of worker threads ends up with dozens of arenas, each keeping
the pages its threads freed. Measured with ``citeqa stress soak`` (docs/STRESS.md): with
the default, the resident size grew 741 → 904 MB in 10 minutes of 32 clients and was
still growing 13 MB a minute at the end; with 2 arenas it levelled off after 6 minutes, and
with ``malloc_trim`` once idle it went back to 782 MB from a peak of 823 (baseline 718).
``mallopt(M_ARENA_MAX)`` applies to arenas created after the call, so it is made before
the server starts its threads.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import time
from typing import Callable, cast

import anyio
from starlette.types import ASGIApp, Receive, Scope, Send

M_ARENA_MAX = -8  # glibc's malloc.h


def limit_malloc_arenas(arenas: int) -> bool:
    """Caps glibc's malloc arenas at ``arenas`` (0 leaves glibc's default). True if the cap
    was set here; False on another C library, or when ``MALLOC_ARENA_MAX`` in the
    environment already decided it (glibc read it at start)."""
    if arenas <= 0 or not sys.platform.startswith("linux") or "MALLOC_ARENA_MAX" in os.environ:
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others: no mallopt
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_ARENA_MAX, arenas))


class IdleTrim:
    """Gives the memory freed during a burst of requests back to the system once the
    server has been idle for ``idle_s`` seconds (glibc's ``malloc_trim``: free pages inside
    the arenas are returned, not only the top of the heap). Without it the resident size
    stays at the burst's high-water mark. ``track`` is ASGI middleware that counts
    requests in flight; ``run`` is the background task that trims."""

    def __init__(self, idle_s: float = 5.0, check_every_s: float = 1.0):
        self.idle_s = idle_s
        self.check_every_s = check_every_s
        self.in_flight = 0
        self.trims = 0
        self._last_active = time.monotonic()
        self._dirty = False  # requests ran since the last trim
        self._malloc_trim = _malloc_trim()

    def track(self, app: ASGIApp) -> ASGIApp:
        async def tracked(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            self.in_flight += 1  # one event loop: no lock needed
            try:
                await app(scope, receive, send)
            finally:
                self.in_flight -= 1
                self._last_active = time.monotonic()
                self._dirty = True
        return tracked

    def due(self) -> bool:
        return (self._malloc_trim is not None and self._dirty and self.in_flight == 0
                and time.monotonic() - self._last_active >= self.idle_s)

    async def run(self) -> None:
        while True:
            await anyio.sleep(self.check_every_s)
            if self.due() and self._malloc_trim is not None:
                self._dirty = False
                await anyio.to_thread.run_sync(self._malloc_trim, 0)
                self.trims += 1


def _malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        trim = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return cast(Callable[[int], int], trim)
