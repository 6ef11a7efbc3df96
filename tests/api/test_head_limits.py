"""Request heads are bounded in time and size by the server itself (api/head_limits.py), and
``citeqa serve`` binds before it builds the app (api/binding.py). Here over raw sockets
against uvicorn with a tiny echo app, in process: the edges of the limits (a slow head, a
silent connection, heads that grow past the limit in pieces or at once, pipelined requests
and large bodies that must not be mistaken for heads). Against a real ``citeqa serve``:
tests/api/test_serve_limits.py."""

from __future__ import annotations

import re
import socket
import threading
import time
from contextlib import closing, contextmanager
from typing import Iterator

import pytest
import uvicorn

from citeqa.api import binding
from citeqa.api.head_limits import head_limited_protocol
from citeqa.api.security import is_loopback

TIMEOUT_S = 1.0
MAX_HEAD = 4096


async def echo_app(scope, receive, send):
    """Answers 200 with the size of the body it read."""
    if scope["type"] != "http":
        return
    size, more = 0, True
    while more:
        message = await receive()
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
    body = str(size).encode()
    headers = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    bound = binding.bind("127.0.0.1", 0)
    config = uvicorn.Config(echo_app, log_level="warning", lifespan="off",
                            http=head_limited_protocol(TIMEOUT_S, MAX_HEAD))
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": bound.sockets}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        yield bound.addresses[0][1]
    finally:
        server.should_exit = True
        thread.join(10)
        bound.close()


@contextmanager
def connection(port: int) -> Iterator[socket.socket]:
    with closing(socket.create_connection(("127.0.0.1", port), timeout=10)) as sock:
        yield sock


def read_all(sock: socket.socket) -> bytes:
    """Everything until the server closes the connection."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def head(extra: bytes = b"", method: bytes = b"GET", body: bytes = b"") -> bytes:
    length = b"Content-Length: %d\r\n" % len(body) if body else b""
    return method + b" /x HTTP/1.1\r\nHost: t\r\n" + length + extra + b"\r\n" + body


def statuses(data: bytes) -> list[int]:
    return [int(status) for status in re.findall(rb"HTTP/1\.1 (\d{3}) ", data)]


def test_a_head_sent_slowly_gets_408_and_is_closed_in_time(port):
    with connection(port) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /x HTTP/1.1\r\nHost: t\r\n")
        try:
            for _ in range(20):  # a header line every 0.2 s: each byte keeps a naive timer alive
                time.sleep(0.2)
                sock.sendall(b"X-Slow: y\r\n")
        except OSError:
            pass  # closed under us: what should happen
        data = read_all(sock)
        assert time.monotonic() - started < TIMEOUT_S + 1.5
    assert statuses(data) == [408] and b'"request_timeout"' in data


def test_a_connection_that_sends_nothing_is_closed(port):
    with connection(port) as sock:
        started = time.monotonic()
        assert read_all(sock) == b""
        assert TIMEOUT_S - 0.1 < time.monotonic() - started < TIMEOUT_S + 1.5


def test_heads_over_the_limit_get_431_at_once_or_in_pieces(port):
    with connection(port) as sock:  # at once, complete
        sock.sendall(head(b"X-Big: " + b"a" * MAX_HEAD + b"\r\n"))
        data = read_all(sock)
        assert statuses(data) == [431] and b'"headers_too_large"' in data
    with connection(port) as sock:  # in pieces, never complete: refused before it ends
        sock.sendall(b"GET /x HTTP/1.1\r\nHost: t\r\nX-Big: ")
        try:
            for _ in range(64):
                sock.sendall(b"a" * 1024)
                time.sleep(0.001)
        except OSError:
            pass
        assert statuses(read_all(sock)) == [431]
    with connection(port) as sock:  # many headers, each small
        sock.sendall(head(b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 40) for i in range(200))))
        assert statuses(read_all(sock)) == [431]


def test_requests_within_the_limits_are_untouched(port):
    body = b"x" * 3_000_000  # a large body arrives in many reads: none of it is a head
    with connection(port) as sock:
        sock.sendall(head(b"X-Fine: " + b"a" * (MAX_HEAD - 200) + b"\r\n"))
        sock.sendall(head(method=b"POST", body=body))
        time.sleep(TIMEOUT_S + 0.5)  # idle between requests: the keep-alive timeout's business
        sock.sendall(head(b"Connection: close\r\n"))
        data = read_all(sock)
    assert statuses(data) == [200, 200, 200] and data.count(b"\r\n\r\n3000000") == 1


def test_pipelined_requests_are_not_mistaken_for_one_large_head(port):
    one = head(b"X-Pad: " + b"p" * 500 + b"\r\n")
    with connection(port) as sock:
        sock.sendall(one * 40 + one[:30])  # 40 whole requests, and the start of another
        time.sleep(0.2)
        sock.sendall(one[30:-2] + b"Connection: close\r\n\r\n")
        assert statuses(read_all(sock)) == [200] * 41


def test_binding_decides_exposure_from_the_addresses_bound():
    with closing_bound("127.0.0.1") as bound:
        assert [a for a, _ in bound.addresses] == ["127.0.0.1"] and is_loopback(bound.exposed_at[0])
    with closing_bound("localhost") as bound:
        assert all(is_loopback(a) for a, _ in bound.addresses)
        assert len({p for _, p in bound.addresses}) == 1  # one port for every address
    with closing_bound("") as bound:  # every interface
        assert not is_loopback(bound.exposed_at[0]) and bound.exposed_at[0] in ("0.0.0.0", "::")
    with closing(socket.socket()) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError):
            binding.bind("127.0.0.1", taken.getsockname()[1])


@contextmanager
def closing_bound(host: str) -> Iterator[binding.Bound]:
    bound = binding.bind(host, 0)
    try:
        yield bound
    finally:
        bound.close()
