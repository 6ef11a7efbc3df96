"""A bounded pool of database connections, each lent to one thread at a time.

Neither sqlite3 nor psycopg connections may be used by two threads at once, and the
API's worker threads come and go (anyio's pool holds up to 40 of them): a connection kept
per thread piled up connections and file descriptors as threads were replaced (4 -> 228
connections after eight rounds of 32 clients). So a thread borrows a connection for one
store call and gives it back. At most ``max_open`` are open at once (a borrower past that
waits for one to come back); those beyond ``max_idle`` are closed once unused for
``linger_s``, so the count falls back soon after a burst, without closing and reopening
connections (a connect each) while the load goes on.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Callable, Generic, Iterator, Protocol, TypeVar


class Connection(Protocol):
    def close(self) -> None: ...


C = TypeVar("C", bound=Connection)

# 2 cores serve the reads; more connections than this only queue in the database.
DEFAULT_MAX_OPEN = 8
# Kept open however long they are unused: opening one costs ~0.5 ms (SQLite) to ~10 ms (PostgreSQL).
DEFAULT_MAX_IDLE = 2
DEFAULT_LINGER_S = 1.0
# A borrower waits this long for a connection before it fails (every one is held that long).
DEFAULT_WAIT_S = 30.0


class ConnectionPool(Generic[C]):
    """``with pool.connection() as conn:`` lends ``conn`` to this thread until the block
    ends; a block inside it (on the same thread) gets the same connection, so reads inside
    a transaction see it. ``usable`` says whether a connection can still be used (say, not
    broken by a server restart); one that cannot is closed and replaced."""

    def __init__(self, connect: Callable[[], C], usable: Callable[[C], bool] = lambda _: True,
                 max_open: int = DEFAULT_MAX_OPEN, max_idle: int | None = None,
                 linger_s: float = DEFAULT_LINGER_S, wait_s: float = DEFAULT_WAIT_S):
        if max_idle is None:
            max_idle = min(DEFAULT_MAX_IDLE, max_open)
        if max_open < 1 or not 0 <= max_idle <= max_open:
            raise ValueError(f"need 1 <= max_open and 0 <= max_idle <= max_open, got {max_open}, {max_idle}")
        self._connect = connect
        self._usable = usable
        self.max_open, self.max_idle = max_open, max_idle
        self._linger_s, self._wait_s = linger_s, wait_s
        self._idle: list[tuple[C, float]] = []  # (connection, given back at), the most recent last
        self._open = 0  # lent, idle, or being opened
        self._waiting = 0
        self._closed = False
        self._trimmer: threading.Timer | None = None
        self._changed = threading.Condition()
        self._this_thread = threading.local()  # .conn: the connection this thread holds, if any

    @property
    def open_count(self) -> int:
        """Connections open now (lent or idle)."""
        with self._changed:
            return self._open

    @contextmanager
    def connection(self) -> Iterator[C]:
        held: C | None = getattr(self._this_thread, "conn", None)
        if held is not None:
            yield held
            return
        conn = self._borrow()
        self._this_thread.conn = conn
        try:
            yield conn
        finally:
            self._this_thread.conn = None
            self._give_back(conn)

    def _borrow(self) -> C:
        deadline = time.monotonic() + self._wait_s
        with self._changed:
            while True:
                if self._closed:
                    raise RuntimeError("store is closed")
                while self._idle:
                    conn, _ = self._idle.pop()  # the most recently used: the others may age out
                    if self._usable(conn):
                        return conn
                    self._open -= 1
                    conn.close()
                if self._open < self.max_open:
                    self._open += 1
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"all {self.max_open} database connections stayed busy for {self._wait_s:g} s")
                self._waiting += 1
                try:
                    self._changed.wait(remaining)
                finally:
                    self._waiting -= 1
        # Connect outside the lock: a server across the network may take a while.
        try:
            conn = self._connect()
        except BaseException:
            self._forget([], failed=1)
            raise
        with self._changed:
            closed = self._closed
        if closed:  # closed while this thread connected: leave nothing open behind
            self._forget([conn])
            raise RuntimeError("store is closed")
        return conn

    def _give_back(self, conn: C) -> None:
        with self._changed:
            if not self._closed and self._usable(conn):
                self._idle.append((conn, time.monotonic()))
                self._changed.notify()
                if len(self._idle) > self.max_idle:
                    self._trim_later(self._linger_s)
                return
        self._forget([conn])

    def _trim_later(self, delay_s: float) -> None:
        """Under the lock: have ``_trim`` run in ``delay_s`` unless it is due already."""
        if self._trimmer is None:
            self._trimmer = threading.Timer(delay_s, self._trim)
            self._trimmer.daemon = True
            self._trimmer.start()

    def _trim(self) -> None:
        """Close the idle connections beyond max_idle that went unused for linger_s."""
        with self._changed:
            self._trimmer = None
            cutoff = time.monotonic() - self._linger_s
            surplus = max(0, len(self._idle) - self.max_idle)
            stale = [conn for conn, since in self._idle[:surplus] if since <= cutoff]
            del self._idle[:len(stale)]  # the oldest come first
            if len(self._idle) > self.max_idle and not self._closed:
                self._trim_later(self._idle[0][1] - cutoff)  # when the oldest has lingered
        if stale:
            self._forget(stale)

    def _forget(self, conns: list[C], failed: int = 0) -> None:
        """Close ``conns`` and count them gone, with ``failed`` connects that opened none:
        waiting borrowers may open one now."""
        for conn in conns:
            conn.close()
        with self._changed:
            self._open -= len(conns) + failed
            self._changed.notify_all()

    def close(self) -> None:
        """Close every idle connection now and every lent one when it comes back;
        borrowing raises RuntimeError from now on."""
        with self._changed:
            self._closed = True
            idle, self._idle = [conn for conn, _ in self._idle], []
            self._open -= len(idle)
            if self._trimmer is not None:
                self._trimmer.cancel()
                self._trimmer = None
            self._changed.notify_all()
        for conn in idle:
            conn.close()
