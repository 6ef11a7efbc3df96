"""A real ``citeqa serve`` started with ``--host ""`` (CITEQA_HOST=""): it binds every
interface, so it is public and keys are required; slow and oversized request heads are cut
off by the server (api/head_limits.py). Traffic goes to 127.0.0.1 only."""

from __future__ import annotations

import re
import socket
import time

import pytest

from tests.support.servers import serving

pytestmark = pytest.mark.slow

HEADER_TIMEOUT_S = 2.0
MARGIN_S = 3.0
SLOW_CLIENTS = 20


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    env = {"CITEQA_HOST": "", "CITEQA_HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S)}
    with serving(tmp_path_factory.mktemp("serve-limits"), env=env) as srv:
        yield srv


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setblocking(False)
    return sock


def _closed(sock: socket.socket) -> bool:
    """Whether the server has closed (or answered and closed) this connection."""
    try:
        while sock.recv(65536):
            pass
        return True  # b"": end of stream
    except BlockingIOError:
        return False
    except OSError:
        return True


def test_an_empty_host_is_every_interface_so_keys_are_required(server):
    with server.client() as http:
        r = http.post("/v1/documents", json={"text": "Open to the network."})
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
        assert http.get("/healthz").status_code == 200
    assert "listening on http://0.0.0.0:" in server.log()


def test_slowloris_sockets_are_closed_within_the_header_timeout(server):
    sockets = [_connect(server.port) for _ in range(SLOW_CLIENTS)]
    started = time.monotonic()
    closed_at: dict[int, float] = {}
    try:
        for sock in sockets:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        while len(closed_at) < len(sockets) and time.monotonic() - started < HEADER_TIMEOUT_S + MARGIN_S:
            time.sleep(0.25)
            for i, sock in enumerate(sockets):
                if i in closed_at:
                    continue
                try:
                    sock.send(b"X-Drip: 1\r\n")  # one more header line: the head never ends
                except OSError:
                    closed_at[i] = time.monotonic() - started
                    continue
                if _closed(sock):
                    closed_at[i] = time.monotonic() - started
    finally:
        for sock in sockets:
            sock.close()
    assert len(closed_at) == SLOW_CLIENTS, f"{SLOW_CLIENTS - len(closed_at)} slow sockets still open"
    assert max(closed_at.values()) < HEADER_TIMEOUT_S + MARGIN_S
    with server.client() as http:  # and the server still answers everyone else
        assert http.get("/healthz").status_code == 200


def test_a_1mb_header_is_refused_without_a_500(server):
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    answer = b""
    try:
        try:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 1_000_000 + b"\r\n\r\n")
        except OSError:
            pass  # closed while we were still sending: refused
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except OSError:
            pass
    finally:
        sock.close()
    status = re.match(rb"HTTP/1\.1 (\d{3}) ", answer)
    assert status is None or status.group(1) == b"431", answer[:300]
    assert b"500" not in answer[:20]
    with server.client() as http:
        assert http.get("/healthz", headers={"X-Fine": "a" * 8000}).status_code == 200
        r = http.get("/healthz", headers={"X-Big": "a" * 20_000})
        assert r.status_code == 431 and r.json()["error"]["code"] == "headers_too_large"
