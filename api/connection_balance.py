"""Connections spread over the workers of ``citeqa serve --workers N`` by how many each holds.

The workers accept on the same listening sockets, and asyncio accepts every pending
connection at each wakeup, so clients that connect together tend to land in one worker; a
keep-alive connection then stays there. Four clients connecting at once, eight trials: all
four in one worker three times, 3/1 three times, 2/2 twice (docs/SCALING.md, session 33), and
the clients of the crowded worker share one core while the other idles.

Each worker counts its open connections in memory shared with its siblings. A worker that
holds more than the least loaded serving worker declines to accept: its listening socket
answers ``accept()`` as if nothing were pending, asyncio waits for the next readiness, and the
other worker, woken by the same readiness, accepts. A worker declines for at most
``DEFER_S`` per pending connection, so a sibling that is slow to wake (or stuck) delays a
connection by that much at worst, never refuses it.
"""

from __future__ import annotations

import errno
import functools
import socket
import time
from multiprocessing.context import SpawnContext
from typing import Any, Callable

ABSENT = -1  # the slot of a worker that is not serving (starting, or gone)
# The longest one worker leaves a pending connection to a less loaded one. While it declines,
# its event loop is woken again and again by the same pending connection (level-triggered),
# so this also bounds that spin; an idle sibling accepts within a millisecond or so.
DEFER_S = 0.05
# Declines further apart than this belong to different pending connections.
EPISODE_GAP_S = 0.01


class ConnectionCounts:
    """Open connections per worker, shared by the supervisor and its spawned workers. Each
    slot is written by its own worker (and reset by the supervisor when that worker starts
    or exits); the others only read it."""

    def __init__(self, workers: int, context: SpawnContext) -> None:
        self._slots: Any = context.RawArray("i", [ABSENT] * workers)

    def serving(self, number: int) -> None:
        self._slots[number] = max(self._slots[number], 0)

    def absent(self, number: int) -> None:
        self._slots[number] = ABSENT

    def opened(self, number: int) -> None:
        self._slots[number] = max(self._slots[number], 0) + 1

    def closed(self, number: int) -> None:
        self._slots[number] = max(self._slots[number] - 1, 0)

    def held(self, number: int) -> int:
        return int(self._slots[number])

    def ahead(self, number: int) -> bool:
        """True when worker ``number`` holds more connections than some other serving worker."""
        mine = max(self._slots[number], 0)
        others = [c for i, c in enumerate(self._slots) if i != number and c != ABSENT]
        return bool(others) and mine > min(others)


class _Counted(socket.socket):
    """An accepted connection that tells its worker's count when it is closed."""

    on_close: Callable[[], None] | None = None

    def close(self) -> None:
        done, self.on_close = self.on_close, None
        if done is not None:
            done()
        super().close()


class BalancedListener(socket.socket):
    """A listening socket that leaves new connections to a less loaded worker (see the
    module's docstring) and counts the ones it accepts."""

    counts: ConnectionCounts
    number: int
    _declining_since = 0.0
    _last_decline = 0.0

    @classmethod
    def wrap(cls, sock: socket.socket, counts: ConnectionCounts, number: int) -> "BalancedListener":
        """``sock``'s file descriptor, taken over (``sock`` is detached)."""
        listener = cls(sock.family, sock.type, sock.proto, fileno=sock.detach())
        listener.counts, listener.number = counts, number
        return listener

    def accept(self) -> tuple[socket.socket, Any]:
        if self.counts.ahead(self.number):
            now = time.monotonic()
            if now - self._last_decline > EPISODE_GAP_S:
                self._declining_since = now  # a new pending connection
            self._last_decline = now
            if now - self._declining_since < DEFER_S:
                raise BlockingIOError(errno.EAGAIN, "left to a less loaded worker")
        fd, address = self._accept()  # type: ignore[attr-defined]
        conn = _Counted(self.family, self.type, self.proto, fileno=fd)
        if socket.getdefaulttimeout() is None and self.gettimeout():
            conn.setblocking(True)  # as socket.accept does
        self.counts.opened(self.number)
        conn.on_close = functools.partial(self.counts.closed, self.number)
        return conn, address


__all__ = ["ABSENT", "DEFER_S", "BalancedListener", "ConnectionCounts"]
