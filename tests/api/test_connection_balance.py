"""Connections left to the least loaded worker (api/connection_balance.py): the counts' rule,
and a real asyncio server on a BalancedListener, whose sibling never accepts."""

from __future__ import annotations

import asyncio
import multiprocessing
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from citeqa.api.connection_balance import ABSENT, DEFER_S, BalancedListener, ConnectionCounts


def counts_of(*slots: int) -> ConnectionCounts:
    counts = ConnectionCounts(len(slots), multiprocessing.get_context("spawn"))
    for number, held in enumerate(slots):
        if held == ABSENT:
            counts.absent(number)
        else:
            counts.serving(number)
            for _ in range(held):
                counts.opened(number)
    return counts


@pytest.mark.parametrize("slots, number, ahead", [
    ((0, 0), 0, False),  # even: accept
    ((1, 0), 0, True),  # more than the other: leave it
    ((1, 0), 1, False),
    ((2, ABSENT), 0, False),  # the other does not serve (starting, or died): accept
    ((ABSENT, ABSENT), 0, False),  # not serving yet itself: nothing to compare with
    ((3, 5, 2), 0, True),  # ahead of the least loaded one, not of every one
    ((2, 5, 2), 0, False),
])
def test_a_worker_is_ahead_when_another_serving_worker_holds_fewer(slots, number, ahead):
    assert counts_of(*slots).ahead(number) is ahead


def test_counts_never_go_below_zero_and_a_worker_that_serves_again_starts_from_its_count():
    counts = counts_of(ABSENT, 0)
    counts.opened(0)  # a connection accepted before the worker said it serves
    counts.serving(0)
    assert counts.held(0) == 1
    counts.closed(0)
    counts.closed(0)
    assert counts.held(0) == 0
    counts.absent(0)
    assert counts.held(0) == ABSENT and not counts.ahead(1)


@pytest.fixture
def lone_listener() -> Iterator[tuple[int, ConnectionCounts]]:
    """An asyncio echo server (worker 0) whose sibling (worker 1) says it serves but never
    accepts: every connection after the first is left to it first."""
    counts = counts_of(0, 0)
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    listener = BalancedListener.wrap(sock, counts, 0)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            writer.write(line)
            await writer.drain()
        writer.close()

    async def stop(server: asyncio.Server) -> None:
        server.close()
        await server.wait_closed()

    server = asyncio.run_coroutine_threadsafe(asyncio.start_server(echo, sock=listener), loop).result(10)
    try:
        yield port, counts
    finally:
        asyncio.run_coroutine_threadsafe(stop(server), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def _echoed(conn: socket.socket, text: bytes) -> bytes:
    conn.sendall(text + b"\n")
    return conn.makefile("rb").readline().strip()


def _settled(check, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.01)
    return check()


def test_a_connection_no_sibling_takes_is_accepted_after_the_deferral(lone_listener):
    port, counts = lone_listener
    first = socket.create_connection(("127.0.0.1", port), timeout=10)
    assert _echoed(first, b"one") == b"one"  # even counts: accepted at once
    assert counts.held(0) == 1 and counts.ahead(0)
    started = time.monotonic()
    second = socket.create_connection(("127.0.0.1", port), timeout=10)
    assert _echoed(second, b"two") == b"two"  # left to worker 1, which never came: taken
    waited = time.monotonic() - started
    assert DEFER_S * 0.8 <= waited < DEFER_S + 2.0, waited
    assert counts.held(0) == 2
    first.close()
    second.close()
    assert _settled(lambda: counts.held(0) == 0), counts.held(0)  # each close is counted once
