"""Taking turns on a model that runs one request at a time (a llama.cpp context is not safe
to share between threads).

A plain lock would do for requests that all want their answer; but a request whose client
has left must not run at all, and one that is still waiting must leave the queue at once,
not hold a thread until its turn comes. So each waiter brings its stop signal, and a
stopped one gives up its place. Turns go in arrival order (``threading.Lock`` promises no
order, so one request could wait behind any number of later ones).
"""

from __future__ import annotations

import threading
from collections import deque
from contextlib import contextmanager
from typing import Iterator


class Turns:
    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._queue: deque[object] = deque()
        self._busy = False

    @contextmanager
    def turn(self, stopped: threading.Event) -> Iterator[bool]:
        """Waits for this caller's turn and yields True, holding it until the block ends; or
        yields False, without waiting any longer, once ``stopped`` is set (call ``wake()``
        after setting it, so a waiter sees it at once)."""
        mine = self._wait(stopped)
        try:
            yield mine
        finally:
            if mine:
                with self._changed:
                    self._busy = False
                    self._changed.notify_all()

    def wake(self) -> None:
        """Has every waiter look at its stop signal again (one was just set)."""
        with self._changed:
            self._changed.notify_all()

    @property
    def waiting(self) -> int:
        with self._changed:
            return len(self._queue)

    def _wait(self, stopped: threading.Event) -> bool:
        me = object()
        with self._changed:
            self._queue.append(me)
            try:
                while not stopped.is_set():
                    if not self._busy and self._queue[0] is me:
                        self._busy = True
                        return True
                    self._changed.wait()
                return False
            finally:
                self._queue.remove(me)
                self._changed.notify_all()  # whoever is first in line now may go
