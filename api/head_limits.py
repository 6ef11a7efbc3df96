"""Limits on a request's head (request line and headers), enforced by the HTTP server itself,
before any of the app runs.

uvicorn closes idle keep-alive connections, but not a client that sends its head a byte at
a time (slowloris: 50 such sockets stayed open for good), and its default parser takes
headers of any size. This protocol adds both limits to uvicorn's httptools protocol:

- A head must be complete ``header_timeout_s`` after its first byte, or after the connection
  opened for a connection's first request: else 408 and the connection is closed (a
  connection that never sent a byte is just closed). The clock runs only while a head is
  awaited: a slow body or a long answer is the request time limit's business
  (api/security.py).
- A head may be at most ``max_header_bytes``: else 431 and the connection is closed. A head
  that arrives in pieces is refused as soon as they add up past the limit, so a 1 MB header
  is never buffered whole.

Used by ``citeqa serve`` (api/cli.py); ``create_app`` knows nothing of it, so tests that build
an app without a server are unaffected.
"""

from __future__ import annotations

import asyncio
import http
import json
import logging
from typing import Any, ClassVar, Literal

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from citeqa.api.errors import error_body

log = logging.getLogger(__name__)

Phase = Literal["idle", "head", "body"]  # between requests, reading a head, past the head


def head_limited_protocol(header_timeout_s: float, max_header_bytes: int) -> type[HeadLimitedProtocol]:
    """The protocol class to give uvicorn (``http=``), with these limits."""

    class Configured(HeadLimitedProtocol):
        pass

    Configured.header_timeout_s = header_timeout_s
    Configured.max_header_bytes = max_header_bytes
    return Configured


class HeadLimitedProtocol(HttpToolsProtocol):
    header_timeout_s: ClassVar[float] = 10.0
    max_header_bytes: ClassVar[int] = 16_384

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._phase: Phase = "idle"
        self._head_bytes = 0  # bytes received while the current head was incomplete
        self._requests = 0  # requests received whole, to tell a chunk that ended one
        self._head_timer: asyncio.TimerHandle | None = None
        self._refused = False  # answered 408/431: whatever else arrives is dropped

    # -- the clock ---------------------------------------------------------------------------

    def _start_clock(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.header_timeout_s, self._too_slow)

    def _stop_clock(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _too_slow(self) -> None:
        self._head_timer = None
        if self._phase == "head":
            self._refuse(408, "request_timeout", f"the request headers took longer than {self.header_timeout_s:g} s")
        elif self.cycle is None or self.cycle.response_complete:  # never close under an answer being sent
            self.transport.close()

    # -- uvicorn's protocol, with the limits ---------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_clock()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_clock()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._phase == "idle":
            self._start_clock()  # a new request begins with these bytes (or stray ones)
        before, requests = self._phase, self._requests
        super().data_received(data)
        # Bytes that arrived while no request was under way and left a head incomplete were all
        # head. (A chunk that also ended a request is not counted: the check of the whole head
        # below is exact; this one only stops a head from growing without bound.)
        if self._phase == "head" and before != "body" and self._requests == requests and not self._refused:
            self._head_bytes += len(data)
            if self._head_bytes > self.max_header_bytes:
                self._too_large()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._phase = "head"

    def on_headers_complete(self) -> None:
        if self._refused:
            return
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)  # "name: value\r\n"
        if max(size, self._head_bytes) > self.max_header_bytes:
            self._too_large()
            return
        self._stop_clock()
        self._phase, self._head_bytes = "body", 0
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if not self._refused:
            super().on_message_complete()
            self._phase = "idle"
            self._requests += 1

    # -- refusing ---------------------------------------------------------------------------

    def _too_large(self) -> None:
        self._refuse(431, "headers_too_large", f"the request line and headers exceed {self.max_header_bytes} bytes")

    def _refuse(self, status: int, code: str, message: str) -> None:
        """Answer ``status`` with the usual error body and close: the rest of the connection
        cannot be trusted to be framed as the client meant."""
        self._refused = True
        self._stop_clock()
        if self.transport.is_closing():
            return
        log.warning("%d %s from %s", status, message, self.client[0] if self.client else "?")
        body = json.dumps(error_body(code, message)).encode()
        head = (f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\ncontent-type: application/json\r\n"
                f"content-length: {len(body)}\r\nconnection: close\r\n\r\n")
        self.transport.write(head.encode("ascii") + body)
        self.transport.close()
