"""The clients of ``citeqa stress soak``: each one a thread with its own connections, drawing
operations by weight until the deadline, the way a busy deployment's users would, and some
of them leaving before their answer is complete (streamed or not).

- ``ask``, ``search``: one of the load bench's questions (bench/stress_load.py);
- ``chat``: a whole chat answer; ``chat-stream``: a streamed one, read to ``[DONE]``;
- ``chat-leave``: a streamed chat whose client hangs up after the first event;
- ``chat-quit``: a whole chat answer whose client gives up after ``quit_after_s`` (when the
  server is slower than that, the client leaves mid-answer; else it is a plain success);
- ``ingest``: a small new document; ``delete``: one this client ingested (an ingest instead
  when it has none left).

A leave is counted as such, never as an error; every other answer must be the success it
should be (any other status, a transport error, or a stream that ends in an error event is
an error, and a 5xx is also counted apart).
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

import httpx

from citeqa.api.client import document_path
from citeqa.bench.stress_load import QUESTIONS

OPERATIONS = ("ask", "search", "chat", "chat-stream", "chat-leave", "chat-quit", "ingest", "delete")
DEFAULT_MIX = "ask=4,search=3,chat=2,chat-stream=2,chat-leave=2,chat-quit=1,ingest=1,delete=1"
REQUEST_TIMEOUT_S = 60.0
MAX_EXAMPLES = 10  # error bodies kept for the report


class Failed(Exception):
    """An answer that is not the success it should be; the message is its kind."""

    def __init__(self, kind: str, response: httpx.Response | None = None):
        super().__init__(kind)
        self.kind = kind
        self.status = response.status_code if response is not None else None
        self.body = response.text[:300] if response is not None else ""


@dataclass
class Tally:
    """What every client did, shared between their threads."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: {op: [] for op in OPERATIONS})
    left: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    server_errors: int = 0
    examples: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, op: str, outcome: str, ms: float) -> None:
        with self.lock:
            if outcome == "left":
                self.left[op] += 1
            else:
                self.latencies[op].append(ms)

    def error(self, op: str, exc: Exception) -> None:
        kind = f"{op} {exc.kind if isinstance(exc, Failed) else type(exc).__name__}"
        with self.lock:
            self.errors[kind] += 1
            if isinstance(exc, Failed) and exc.status is not None and exc.status >= 500:
                self.server_errors += 1
            if len(self.examples) < MAX_EXAMPLES:
                detail = exc.body if isinstance(exc, Failed) else str(exc)
                self.examples.append(f"{kind}: {detail}"[:400])


@dataclass(frozen=True)
class Workload:
    url: str
    mix: dict[str, int]
    tag: str  # new doc_ids on every run
    generator: str | None = None  # for ask and chat; None: the server's default
    headers: dict[str, str] = field(default_factory=dict)
    quit_after_s: float = 0.3


class SoakClient:
    def __init__(self, number: int, work: Workload, tally: Tally, seed: int = 0):
        self.number = number
        self.work = work
        self.tally = tally
        self.rng = random.Random(f"{seed}-{number}")
        self.mine: list[str] = []  # doc_ids this client ingested and has not deleted
        self.made = 0
        self.http = httpx.Client(base_url=work.url, headers=work.headers, timeout=REQUEST_TIMEOUT_S)
        self.operations: dict[str, Callable[[], str]] = {
            "ask": self.ask, "search": self.search, "chat": self.chat, "chat-stream": self.chat_stream,
            "chat-leave": self.chat_leave, "chat-quit": self.chat_quit, "ingest": self.ingest,
            "delete": self.delete}

    def run_until(self, deadline: float) -> None:
        names, weights = list(self.work.mix), list(self.work.mix.values())
        with self.http:
            while time.monotonic() < deadline:
                op = self.rng.choices(names, weights)[0]
                self.once("ingest" if op == "delete" and not self.mine else op)

    def once(self, op: str) -> None:
        t0 = time.perf_counter()
        try:
            outcome = self.operations[op]()
        except (Failed, httpx.HTTPError) as exc:
            self.tally.error(op, exc)
            return
        self.tally.record(op, outcome, (time.perf_counter() - t0) * 1000)

    # -- the operations: each returns "ok" or "left", or raises Failed --------------------------

    def _question(self) -> str:
        return self.rng.choice(QUESTIONS)

    def _chat_body(self, stream: bool) -> dict[str, Any]:
        return {"model": self.work.generator or "citeqa", "stream": stream,
                "messages": [{"role": "user", "content": self._question()}]}

    def ask(self) -> str:
        body: dict[str, Any] = {"question": self._question()}
        if self.work.generator:
            body["generator"] = self.work.generator
        _expect(self.http.post("/v1/ask", json=body), 200)
        return "ok"

    def search(self) -> str:
        _expect(self.http.post("/v1/search", json={"query": self._question()}), 200)
        return "ok"

    def chat(self) -> str:
        r = _expect(self.http.post("/v1/chat/completions", json=self._chat_body(False)), 200)
        if not r.json().get("choices"):
            raise Failed("answer without choices", r)
        return "ok"

    def chat_stream(self) -> str:
        with self.http.stream("POST", "/v1/chat/completions", json=self._chat_body(True)) as r:
            _expect(r, 200)
            lines = [line for line in r.iter_lines() if line]
        if not lines or lines[-1] != "data: [DONE]":
            raise Failed("stream without [DONE]")
        if any(line.startswith('data: {"error"') for line in lines):
            raise Failed(f"stream ended in an error event: {lines[-2][:200]}")
        return "ok"

    def chat_leave(self) -> str:
        # Leaving the block unread closes the connection: the server sees the client go.
        with self.http.stream("POST", "/v1/chat/completions", json=self._chat_body(True)) as r:
            _expect(r, 200)
            next(line for line in r.iter_lines() if line.startswith("data:"))
        return "left"

    def chat_quit(self) -> str:
        try:
            _expect(self.http.post("/v1/chat/completions", json=self._chat_body(False),
                                   timeout=self.work.quit_after_s), 200)
        except httpx.ReadTimeout:
            return "left"
        return "ok"

    def ingest(self) -> str:
        n = self.made = self.made + 1
        doc_id = f"stress-soak-{self.work.tag}-{self.number}-{n}"
        text = (f"Soak note {self.number}-{n}: warehouse {n} stores {self.rng.randint(1, 999)} barrels of "
                f"cider. Its keeper counts them every {self.rng.choice(['Monday', 'Friday'])} at dawn.")
        _expect(self.http.post("/v1/documents", json={"doc_id": doc_id, "text": text}), 201)
        self.mine.append(doc_id)
        return "ok"

    def delete(self) -> str:
        doc_id = self.mine.pop(self.rng.randrange(len(self.mine)))
        _expect(self.http.delete(document_path(doc_id)), 204)
        return "ok"


def _expect(response: httpx.Response, status: int) -> httpx.Response:
    if response.status_code != status:
        response.read()  # a streamed one too: its body says what went wrong
        raise Failed(f"HTTP {response.status_code}", response)
    return response
