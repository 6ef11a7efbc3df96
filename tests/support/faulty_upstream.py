"""A real HTTP server on a local port that fails the way OpenAI-compatible upstreams do:
errors with messages, rate limits, hangs, broken streams. Each request takes the next
behaviour from a script, so retries can be observed."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

ANSWER = "Kim Jong Un sent 11,000 to 12,000 troops [1]."


class FaultyUpstream:
    def __init__(self, script: list[str]):
        """``script``: one behaviour per request (the last repeats): "ok", "json" (no stream),
        "500", "429", "400", "504" (a gateway that gave up), "hang", "garbage", "error-event",
        "drop" (closes mid-stream)."""
        self.script = list(script)
        self.requests: list[dict] = []
        self.headers: list[dict[str, str]] = []
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
                upstream.requests.append(body)
                upstream.headers.append(dict(self.headers))
                behaviour = upstream.script[min(len(upstream.requests), len(upstream.script)) - 1]
                getattr(self, "_" + behaviour.replace("-", "_"))()

            def _send(self, status: int, payload: dict, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _events(self, events: Iterator[str]) -> None:
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("connection", "close")
                self.end_headers()
                for event in events:
                    self.wfile.write(f"data: {event}\n\n".encode())
                    self.wfile.flush()

            def _ok(self) -> None:
                words = ANSWER.split(" ")
                self._events(json.dumps({"choices": [{"delta": {"content": w + (" " if i < len(words) - 1 else "")}}]})
                             for i, w in enumerate(words))
                self.wfile.write(b"data: [DONE]\n\n")
                self.close_connection = True

            def _json(self) -> None:
                self._send(200, {"choices": [{"message": {"role": "assistant", "content": ANSWER}}],
                                 "usage": {"completion_tokens": 9}})

            def _500(self) -> None:
                self._send(500, {"error": {"message": "model crashed: out of memory"}})

            def _504(self) -> None:
                self._send(504, {"error": {"message": "the model took too long"}})

            def _429(self) -> None:
                self._send(429, {"error": {"message": "slow down"}}, {"retry-after": "0"})

            def _400(self) -> None:
                self._send(400, {"error": {"message": "model 'gpt-x' does not exist"}})

            def _hang(self) -> None:
                time.sleep(3)
                with contextlib.suppress(ConnectionError):  # the client gave up at its timeout, as it should
                    self._send(200, {"choices": [{"message": {"content": "too late"}}]})

            def _garbage(self) -> None:
                self._events(iter(["this is not json"]))
                self.close_connection = True

            def _error_event(self) -> None:
                self._events(iter([json.dumps({"error": {"message": "context length exceeded"}})]))
                self.close_connection = True

            def _drop(self) -> None:
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("content-length", "100000")
                self.end_headers()
                self.wfile.write(b'data: {"choices": [{"delta": {"content": "Kim"}}]}\n\n')
                self.wfile.flush()
                self.close_connection = True

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "FaultyUpstream":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
