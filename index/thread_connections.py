"""One database connection per thread, each opened on first use and all closed together.

Neither sqlite3 nor psycopg connections may be used by two threads at once, and the
API's worker threads come and go: each thread gets its own connection, and the store
keeps track of them all so that ``close`` leaves none open.
"""

from __future__ import annotations

import threading
from typing import Callable, Generic, Protocol, TypeVar


class Connection(Protocol):
    def close(self) -> None: ...


C = TypeVar("C", bound=Connection)


class ThreadConnections(Generic[C]):
    """``get()`` is this thread's connection. ``usable`` says whether a connection can
    still be used (say, not broken by a server restart); one that cannot is replaced."""

    def __init__(self, connect: Callable[[], C], usable: Callable[[C], bool] = lambda _: True):
        self._connect = connect
        self._usable = usable
        self._local = threading.local()
        self._open: list[C] = []
        self._lock = threading.Lock()
        self._closed = False

    def get(self) -> C:
        local = self._local
        conn: C | None = getattr(local, "conn", None)
        if conn is not None and self._usable(conn):
            return conn
        if self._closed:
            raise RuntimeError("store is closed")
        fresh = self._connect()
        with self._lock:
            if self._closed:  # closed while this thread connected: leave nothing open behind
                fresh.close()
                raise RuntimeError("store is closed")
            if conn is not None and conn in self._open:
                self._open.remove(conn)
                conn.close()
            self._open.append(fresh)
        local.conn = fresh
        return fresh

    def close(self) -> None:
        """Close every thread's connection; ``get`` raises RuntimeError from now on."""
        with self._lock:
            self._closed = True
            for conn in self._open:
                conn.close()
            self._open.clear()
        self._local = threading.local()
