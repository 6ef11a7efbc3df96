"""Observability: Prometheus metrics at ``/metrics``, a request id per request (echoed in
``X-Request-ID`` and carried by every log line), and JSON logs with one access line per request.

Each app has its own ``Metrics`` (its own registry: tests build many apps in one process),
created by ``create_app`` and reached by routes as ``MetricsDep``; ``install(app, metrics)``
adds the middleware that records into it. ``configure_logging()`` is for the process
(``citeqa serve``), not the app, so tests that build many apps do not fight over it.
"""

from __future__ import annotations

import inspect
import json
import logging
import math
import os
import re
import sys
import time
import uuid
from contextvars import ContextVar
from datetime import datetime, timezone
from typing import Any, Callable

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from citeqa.qa.types import VerifiedAnswer

log = logging.getLogger(__name__)
access_log = logging.getLogger("citeqa.access")

# The current request's id, for log lines emitted anywhere while it is handled (FastAPI's
# threadpool copies the context, so sync endpoints see it too).
request_id_var: ContextVar[str | None] = ContextVar("citeqa_request_id", default=None)

_SANE_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
_SCOPE_KEY = "citeqa.request"  # a per-request dict shared by the two middlewares below
UNMATCHED = "unmatched"
# Any token is a valid HTTP method; label only the known ones so clients cannot add series.
_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
# Language-model generation takes seconds to minutes; the default buckets stop at 10 s.
_GENERATOR_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300)


class Metrics:
    """Every citeqa metric, in a registry of its own: tests build many apps in one process,
    and the global registry refuses a second metric of the same name."""

    def __init__(self, index_size: Callable[[], int]):
        self.registry = CollectorRegistry()
        r = self.registry
        self.http_requests = Counter("citeqa_http_requests_total", "HTTP requests by route template and status.",
                                     ["method", "route", "status"], registry=r)
        self.http_duration = Histogram("citeqa_http_request_duration_seconds",
                                       "HTTP request latency (streamed responses: until the last byte).",
                                       ["method", "route"], registry=r)
        self.documents_ingested = Counter("citeqa_documents_ingested_total", "Documents ingested.", registry=r)
        self.sentences_ingested = Counter("citeqa_sentences_ingested_total", "Sentences ingested.", registry=r)
        self.index_sentences = Gauge("citeqa_index_sentences", "Sentences in the index (live and old versions).",
                                     registry=r)
        self._index_size = index_size
        self.index_sentences.set_function(self._read_index_size)  # read at scrape time, never stale
        self.generator_duration = Histogram("citeqa_generator_duration_seconds", "Time the generator took to draft.",
                                            ["generator"], buckets=_GENERATOR_BUCKETS, registry=r)
        self.generator_tokens = Counter("citeqa_generator_tokens_total", "Completion tokens generated.",
                                        ["generator"], registry=r)
        self.answers = Counter("citeqa_answers_total", "Answers by generator and status.",
                               ["generator", "status"], registry=r)
        self.dropped_citations = Counter("citeqa_dropped_citations_total",
                                         "Citations that failed verification and were dropped.", ["generator"],
                                         registry=r)
        # With `citeqa serve --workers N` each process counts its own requests: the pid says
        # whose figures a scrape got (and the bench waits until it has seen every worker's).
        Gauge("citeqa_process", "This serving process (one of citeqa serve --workers N), by pid.", ["pid"],
              registry=r).labels(str(os.getpid())).set(1)

    def _read_index_size(self) -> float:
        try:
            return float(self._index_size())
        except Exception:  # starting up or shutting down: unknown, not zero, and no failed scrape
            log.debug("index size unavailable", exc_info=True)
            return math.nan

    def observe_answer(self, result: VerifiedAnswer) -> None:
        generator = str(result.generation.get("generator", "unknown"))
        generate_ms = result.timings_ms.get("generate")
        if generate_ms is not None:  # absent when retrieval abstained before any drafting
            self.generator_duration.labels(generator).observe(generate_ms / 1000)
        tokens = result.generation.get("completion_tokens")
        if isinstance(tokens, (int, float)) and tokens > 0:
            self.generator_tokens.labels(generator).inc(tokens)
        self.answers.labels(generator, result.status).inc()
        # inc(0) too, so the series exists from the first answer and rate() works at once.
        self.dropped_citations.labels(generator).inc(max(0, result.dropped_citations))

    def observe_ingest(self, documents: int, sentences: int) -> None:
        self.documents_ingested.inc(documents)
        self.sentences_ingested.inc(sentences)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class RequestContextMiddleware:
    """Outermost middleware: request id, ``X-Request-ID`` on every response, HTTP metrics and
    one access-log line per request. It wraps ``send`` and never touches bodies, so streamed
    (SSE) responses flow through unbuffered."""

    def __init__(self, app: ASGIApp, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _SANE_ID.fullmatch(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        ctx: dict[str, Any] = {}
        scope = {**scope, _SCOPE_KEY: ctx}  # copies made further in still share ``ctx``
        status = 0  # stays 0 when no response was started
        failed = False
        t0 = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            failed = True
            if status:  # mid-stream: too late for an error response; the server logs it
                raise
            # Starlette would answer this 500 outside every middleware, without the header and
            # after the request id is gone from the logs: answer it here with the app's own
            # handler (api/errors.py logs the stack trace; the response never carries it).
            await self._internal_error(scope, receive, send_with_id, exc)
        finally:
            duration = time.perf_counter() - t0
            # No response at all: the handler failed (500) or the client left first (499, as nginx).
            status = status or (500 if failed else 499)
            route = ctx.get("route") or UNMATCHED
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            self.metrics.http_requests.labels(method, route, str(status)).inc()
            self.metrics.http_duration.labels(method, route).observe(duration)
            client = scope.get("client")
            access_log.info("%s %s %d %.1fms", scope["method"], scope["path"], status, duration * 1000, extra={
                "method": scope["method"], "path": scope["path"], "route": route, "status": status,
                "duration_ms": round(duration * 1000, 2), "request_id": request_id,
                "client": client[0] if client else None})
            request_id_var.reset(token)

    async def _internal_error(self, scope: Scope, receive: Receive, send: Send, exc: Exception) -> None:
        handler = getattr(scope.get("app"), "exception_handlers", {}).get(Exception)
        if handler is None:
            log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            await send({"type": "http.response.start", "status": 500,
                        "headers": [(b"content-type", b"text/plain; charset=utf-8")]})
            await send({"type": "http.response.body", "body": b"Internal Server Error"})
            return
        response = handler(Request(scope), exc)
        if inspect.isawaitable(response):
            response = await response
        await response(scope, receive, send)


class _RouteRecorder:
    """Innermost middleware (just outside the router): reads the matched route template
    from the scope the router filled in. The outer middleware cannot see it there when a
    middleware in between copied the scope (JsonBodyMiddleware does, for ``curl -d``)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        finally:
            ctx = scope.get(_SCOPE_KEY)
            path = getattr(scope.get("route"), "path", None)
            if ctx is not None and isinstance(path, str) and path:
                ctx["route"] = path  # the template, e.g. /v1/documents/{doc_id:path}: bounded labels


def install(app: FastAPI, metrics: Metrics) -> None:
    """The request-context middleware, recording into ``metrics``. Call it after every other
    ``add_middleware``: the last added is outermost, and this one must see everything (a 413
    from JsonBodyMiddleware too)."""
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    app.user_middleware.append(Middleware(_RouteRecorder))  # appended: innermost


# -- logging ---------------------------------------------------------------------------------

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_RECORD_FIELDS = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName", "color_message"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, request_id, the ``extra``
    fields, and ``exc`` (the stack trace as a string) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id is not None:
            out["request_id"] = request_id
        out.update({k: v for k, v in record.__dict__.items() if k not in _RECORD_FIELDS})
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, ensure_ascii=False, default=str)


class _TextFormatter(logging.Formatter):
    """The human format (``json_logs=False``), with the request id when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = request_id_var.get()
        return f"{line} [request_id={request_id}]" if request_id else line


def configure_logging(level: str = "INFO", json_logs: bool = True) -> None:
    """Route every log line (ours and uvicorn's) through one root handler. Pair it with
    ``uvicorn.run(..., log_config=None)`` so uvicorn does not install its own handlers."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_logs else
                         _TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        uv = logging.getLogger(name)
        uv.handlers.clear()
        uv.propagate = True
    # citeqa.access says the same with the route, the request id and the duration.
    uvicorn_access = logging.getLogger("uvicorn.access")
    uvicorn_access.handlers.clear()
    uvicorn_access.propagate = False
    uvicorn_access.disabled = True
