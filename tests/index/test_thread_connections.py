"""The connection pool: lent to one thread at a time, bounded, given back, all closed together."""

from __future__ import annotations

import threading
import time

import pytest

from citeqa.index.thread_connections import ConnectionPool


class FakeConnection:
    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


class Opener:
    """Makes fake connections and remembers every one."""

    def __init__(self) -> None:
        self.made: list[FakeConnection] = []
        self._lock = threading.Lock()

    def __call__(self) -> FakeConnection:
        conn = FakeConnection()
        with self._lock:
            self.made.append(conn)
        return conn

    @property
    def still_open(self) -> int:
        return sum(not c.closed for c in self.made)


def run_threads(count: int, target) -> None:
    threads = [threading.Thread(target=target) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)


def test_a_nested_borrow_gets_the_same_connection_and_threads_get_their_own():
    pool = ConnectionPool(Opener())
    with pool.connection() as mine:
        with pool.connection() as inner:
            assert inner is mine  # reads inside a transaction see it
        theirs: list[FakeConnection] = []

        def borrow() -> None:
            with pool.connection() as conn:
                theirs.append(conn)

        run_threads(1, borrow)
        assert theirs[0] is not mine
    with pool.connection() as again:
        assert again in (mine, theirs[0])  # given back and lent again, not a new one


def settled(pool: ConnectionPool, count: int, timeout_s: float = 5) -> int:
    """The pool's open connections once they are at most ``count`` (or after ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    while pool.open_count > count and time.monotonic() < deadline:
        time.sleep(0.01)
    return pool.open_count


def test_many_short_lived_threads_leave_a_bounded_number_of_connections():
    opener = Opener()
    pool = ConnectionPool(opener, max_open=4, max_idle=2, linger_s=0.05)
    peak = 0
    lock = threading.Lock()
    start = threading.Barrier(32)

    def read() -> None:
        nonlocal peak
        start.wait(timeout=10)
        for _ in range(20):
            with pool.connection():
                with lock:
                    peak = max(peak, opener.still_open)

    for _ in range(8):  # eight rounds of 32 threads that come and go, as the API's do
        run_threads(32, read)
        assert 1 <= settled(pool, 2) == opener.still_open <= 2  # back to what the pool keeps
    assert peak <= 4
    pool.close()
    assert opener.still_open == 0 and pool.open_count == 0


def test_under_load_connections_are_reused_not_reopened():
    opener = Opener()
    pool = ConnectionPool(opener, max_open=4, max_idle=1, linger_s=60)
    start = threading.Barrier(16)

    def read() -> None:
        start.wait(timeout=10)
        for _ in range(50):
            with pool.connection():
                time.sleep(0)

    for _ in range(4):
        run_threads(16, read)
    assert len(opener.made) <= 4  # at most one connect per place in the pool
    pool.close()
    assert opener.still_open == 0


def test_connections_beyond_max_idle_close_once_unused_for_linger_s():
    opener = Opener()
    pool = ConnectionPool(opener, max_open=4, max_idle=1, linger_s=1.0)
    together = threading.Barrier(3)

    def hold() -> None:
        with pool.connection():
            together.wait(timeout=10)

    run_threads(3, hold)
    assert pool.open_count == 3  # kept for the next borrower a while
    assert settled(pool, 1) == opener.still_open == 1
    pool.close()


def test_a_borrower_past_the_bound_waits_for_a_connection_to_come_back():
    opener = Opener()
    pool = ConnectionPool(opener, max_open=1, max_idle=1)
    got: list[FakeConnection] = []

    def borrow() -> None:
        with pool.connection() as conn:
            got.append(conn)

    with pool.connection() as held:
        waiter = threading.Thread(target=borrow)
        waiter.start()
        waiter.join(timeout=0.2)
        assert waiter.is_alive() and not got  # waiting, not opening a second one
    waiter.join(timeout=10)
    assert got == [held] and len(opener.made) == 1


def test_a_borrower_that_waits_too_long_fails_clearly():
    pool = ConnectionPool(Opener(), max_open=1, wait_s=0.05)
    errors: list[BaseException] = []

    def borrow() -> None:
        try:
            with pool.connection():
                pass
        except TimeoutError as exc:
            errors.append(exc)

    with pool.connection():
        run_threads(1, borrow)
    assert len(errors) == 1 and "busy" in str(errors[0])


def test_close_closes_every_connection_and_refuses_more():
    opener = Opener()
    pool = ConnectionPool(opener, max_idle=4)
    start = threading.Barrier(3)

    def borrow() -> None:
        with pool.connection():
            start.wait(timeout=10)

    run_threads(3, borrow)
    assert opener.still_open == 3
    with pool.connection() as lent:
        pool.close()
        assert not lent.closed  # in use: closed once given back
    assert opener.still_open == 0 and pool.open_count == 0
    with pytest.raises(RuntimeError, match="closed"):
        with pool.connection():
            pass


def test_an_unusable_connection_is_replaced_and_closed():
    pool = ConnectionPool(Opener(), usable=lambda c: not c.closed)
    with pool.connection() as first:
        pass
    first.closed = True  # say, broken by a server restart while idle
    with pool.connection() as second:
        assert second is not first and not second.closed
    assert pool.open_count == 1
    pool.close()
    assert second.closed


def test_a_failed_connect_frees_its_place():
    attempts = []

    def connect() -> FakeConnection:
        attempts.append(1)
        if len(attempts) == 1:
            raise OSError("unable to open database file")
        return FakeConnection()

    pool = ConnectionPool(connect, max_open=1)
    with pytest.raises(OSError):
        with pool.connection():
            pass
    assert pool.open_count == 0
    with pool.connection() as conn:
        assert not conn.closed


def test_bounds_are_checked():
    with pytest.raises(ValueError):
        ConnectionPool(Opener(), max_open=0)
    with pytest.raises(ValueError):
        ConnectionPool(Opener(), max_open=2, max_idle=3)
