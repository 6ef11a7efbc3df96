"""One connection per thread, all closed together."""

from __future__ import annotations

import threading

import pytest

from citeqa.index.thread_connections import ThreadConnections


class FakeConnection:
    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


def test_each_thread_gets_its_own_connection_and_keeps_it():
    conns = ThreadConnections(FakeConnection)
    mine = conns.get()
    assert conns.get() is mine
    theirs: list[FakeConnection] = []
    thread = threading.Thread(target=lambda: theirs.extend([conns.get(), conns.get()]))
    thread.start()
    thread.join()
    assert theirs[0] is theirs[1] and theirs[0] is not mine


def test_close_closes_every_threads_connection_and_refuses_more():
    conns = ThreadConnections(FakeConnection)
    opened = [conns.get()]
    thread = threading.Thread(target=lambda: opened.append(conns.get()))
    thread.start()
    thread.join()
    conns.close()
    assert all(c.closed for c in opened)
    with pytest.raises(RuntimeError, match="closed"):
        conns.get()


def test_an_unusable_connection_is_replaced_and_closed():
    conns = ThreadConnections(FakeConnection, usable=lambda c: not c.closed)
    first = conns.get()
    first.closed = True  # say, broken by a server restart
    second = conns.get()
    assert second is not first and not second.closed
    conns.close()
    assert second.closed
