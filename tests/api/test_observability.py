"""/metrics, X-Request-ID and JSON logs (api/observability.py), over the real app factory."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from datetime import datetime

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from citeqa.api import observability
from citeqa.api.app import create_app
from citeqa.api.observability import JsonFormatter, RequestContextMiddleware, configure_logging
from citeqa.qa.types import VerifiedAnswer
from tests.support.corpus import TROOPS_QUESTION

DOC_ROUTE = "/v1/documents/{doc_id:path}"
CHAT = {"messages": [{"role": "user", "content": TROOPS_QUESTION}], "stream": True}


class JsonLines(logging.Handler):
    """Formats at emit time, in the request's context, as the real stream handler does."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))

    def of(self, logger: str) -> list[dict]:
        return [line for line in self.lines if line["logger"] == logger]


@pytest.fixture
def logs(caplog):
    caplog.set_level(logging.INFO)
    handler = JsonLines()
    root = logging.getLogger()
    root.addHandler(handler)
    yield handler
    root.removeHandler(handler)


@pytest.fixture
def app(settings, embedder) -> FastAPI:
    app = create_app(settings, embedder=embedder)

    @app.get("/_test/log")
    def _log() -> dict:  # a sync route: runs in the threadpool, which must carry the id
        logging.getLogger("citeqa.test").info("inside the route", extra={"marker": 7})
        return {}

    @app.get("/_test/boom")
    def _boom() -> dict:
        raise RuntimeError("secret detail")

    return app


@pytest.fixture
def client(app):
    with TestClient(app) as c:
        yield c


def samples(client, name: str, **labels: str) -> list:
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    return [s for family in text_string_to_metric_families(r.text) for s in family.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]


def value(client, name: str, **labels: str) -> float:
    found = samples(client, name, **labels)
    assert len(found) == 1, (name, labels, found)
    return found[0].value


# -- request ids -----------------------------------------------------------------------------

def test_request_id_is_generated_and_unique(client):
    a, b = client.get("/healthz"), client.get("/healthz")
    assert re.fullmatch(r"[0-9a-f]{32}", a.headers["x-request-id"])
    assert a.headers["x-request-id"] != b.headers["x-request-id"]


def test_sane_incoming_request_id_is_kept(client):
    for rid in ("abc-123.X_y", "a" * 128, "7"):
        assert client.get("/healthz", headers={"X-Request-ID": rid}).headers["x-request-id"] == rid


@pytest.mark.parametrize("rid", ["a" * 129, "has space", "semi;colon", "sl/ash", "ünï".encode(), ""])
def test_insane_incoming_request_id_is_replaced(client, rid):
    got = client.get("/healthz", headers={"X-Request-ID": rid}).headers.get_list("x-request-id")
    assert len(got) == 1 and re.fullmatch(r"[0-9a-f]{32}", got[0])


def test_request_id_on_error_responses(client, settings):
    cases = [client.get("/v1/documents/no-such-doc"),                            # 404 from a route
             client.get("/no/such/route"),                                       # 404 from the router
             client.post("/v1/ask", json={}),                                    # 422 validation
             client.post("/v1/ask", content=b"x" * (settings.max_body_bytes + 1)),  # 413 JsonBodyMiddleware
             client.get("/_test/boom")]                                          # 500 unhandled
    assert [r.status_code for r in cases] == [404, 404, 422, 413, 500]
    for r in cases:
        assert re.fullmatch(r"[0-9a-f]{32}", r.headers["x-request-id"]), r.status_code
        assert set(r.json()) == {"error"}
    assert "secret detail" not in cases[-1].text and "Traceback" not in cases[-1].text


def test_request_id_on_streamed_chat(client):
    with client.stream("POST", "/v1/chat/completions", json=CHAT, headers={"X-Request-ID": "sse-1"}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["x-request-id"] == "sse-1"
        events = [line for line in r.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "data: [DONE]" and len(events) > 2


def test_middleware_does_not_buffer_streamed_bodies():
    """The first chunk reaches the server while the app is still producing the rest."""
    metrics = observability.Metrics(lambda: 0)
    release = asyncio.Event()
    sent: list[dict] = []

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        await send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": True})
        await release.wait()
        await send({"type": "http.response.body", "body": b"data: 2\n\n", "more_body": False})

    async def send(message):
        sent.append(message)
        if message.get("body") == b"data: 1\n\n":
            release.set()  # only now may the app finish: a buffering middleware would deadlock

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    scope = {"type": "http", "method": "GET", "path": "/s", "headers": [], "client": ("1.2.3.4", 5)}
    asyncio.run(asyncio.wait_for(RequestContextMiddleware(app, metrics)(scope, receive, send), 5))
    assert [m.get("body") for m in sent] == [None, b"data: 1\n\n", b"data: 2\n\n"]
    assert (b"x-request-id", sent[0]["headers"][-1][1]) in sent[0]["headers"]


def test_a_request_the_client_left_before_any_response_counts_as_499():
    metrics = observability.Metrics(lambda: 0)

    async def app(scope, receive, send):  # as JsonBodyMiddleware does on http.disconnect
        return

    async def send(message):
        raise AssertionError("nothing should be sent")

    scope = {"type": "http", "method": "BREW", "path": "/x", "headers": [], "client": None}
    asyncio.run(RequestContextMiddleware(app, metrics)(scope, None, send))
    body = metrics.render()[0].decode()
    assert 'citeqa_http_requests_total{method="OTHER",route="unmatched",status="499"} 1.0' in body


# -- metrics ---------------------------------------------------------------------------------

def test_http_metrics_use_route_templates(client):
    for doc_id in ("abc", "xyz"):
        assert client.get(f"/v1/documents/{doc_id}").status_code == 404
    client.get("/no/such/route")
    # curl -d: JsonBodyMiddleware copies the scope; the route must still be found.
    client.post("/v1/search", content=json.dumps({"query": "troops"}),
                headers={"content-type": "application/x-www-form-urlencoded"})
    client.get("/healthz")
    text = client.get("/metrics").text
    assert "abc" not in text and "xyz" not in text and "no/such" not in text
    assert value(client, "citeqa_http_requests_total", method="GET", route=DOC_ROUTE, status="404") == 2
    assert value(client, "citeqa_http_requests_total", method="GET", route="unmatched", status="404") == 1
    assert value(client, "citeqa_http_requests_total", method="POST", route="/v1/search", status="200") == 1
    assert value(client, "citeqa_http_requests_total", method="GET", route="/healthz", status="200") == 1
    buckets = samples(client, "citeqa_http_request_duration_seconds_bucket", method="GET", route=DOC_ROUTE)
    assert len(buckets) > 5 and {b.labels["le"] for b in buckets} >= {"0.005", "1.0", "+Inf"}
    assert [b.value for b in buckets if b.labels["le"] == "+Inf"] == [2]
    assert value(client, "citeqa_http_request_duration_seconds_count", method="GET", route=DOC_ROUTE) == 2


def test_metrics_endpoint_is_not_in_the_schema(client):
    assert "/metrics" not in client.get("/openapi.json").json()["paths"]


def test_index_size_gauge_reads_the_store(client):
    indexed = client.get("/readyz").json()["sentences"]
    assert indexed > 0
    assert value(client, "citeqa_index_sentences") == indexed
    client.post("/v1/documents", json={"doc_id": "g", "text": "One sentence here. And a second one."})
    assert value(client, "citeqa_index_sentences") == indexed + 2


def test_answer_and_ingest_metrics(client, app):
    metrics = app.state.metrics
    metrics.observe_answer(VerifiedAnswer("Eleven thousand [1].", "answered", [], 1, timings_ms={"generate": 1500.0},
                                          generation={"generator": "llamacpp", "completion_tokens": 42}))
    metrics.observe_answer(VerifiedAnswer("No answer.", "unsupported", [], 0, timings_ms={"total": 3.0},
                                          generation={"generator": "llamacpp", "passages_shown": 0}))
    metrics.observe_ingest(documents=2, sentences=30)
    g = {"generator": "llamacpp"}
    assert value(client, "citeqa_answers_total", status="answered", **g) == 1
    assert value(client, "citeqa_answers_total", status="unsupported", **g) == 1
    assert value(client, "citeqa_generator_tokens_total", **g) == 42
    assert value(client, "citeqa_dropped_citations_total", **g) == 1
    assert value(client, "citeqa_generator_duration_seconds_count", **g) == 1  # the abstention drafted nothing
    assert value(client, "citeqa_generator_duration_seconds_sum", **g) == pytest.approx(1.5)
    assert value(client, "citeqa_generator_duration_seconds_bucket", le="1.0", **g) == 0
    assert value(client, "citeqa_generator_duration_seconds_bucket", le="2.5", **g) == 1
    assert value(client, "citeqa_documents_ingested_total") == 2
    assert value(client, "citeqa_sentences_ingested_total") == 30


# -- logs ------------------------------------------------------------------------------------

def test_log_lines_carry_the_request_id(client, logs):
    client.get("/_test/log", headers={"X-Request-ID": "req-log-1"})
    (line,) = logs.of("citeqa.test")
    assert line["request_id"] == "req-log-1" and line["message"] == "inside the route" and line["marker"] == 7
    assert line["level"] == "INFO" and datetime.fromisoformat(line["ts"]).utcoffset().total_seconds() == 0
    client.get("/healthz")
    logging.getLogger("citeqa.test").info("outside any request")
    assert "request_id" not in logs.of("citeqa.test")[-1]


def test_access_log_is_one_json_line_per_request(client, logs):
    r = client.get("/v1/documents/abc", headers={"X-Request-ID": "acc-1"})
    (line,) = [x for x in logs.of("citeqa.access") if x["request_id"] == "acc-1"]
    assert r.status_code == 404
    assert line["method"] == "GET" and line["path"] == "/v1/documents/abc" and line["route"] == DOC_ROUTE
    assert line["status"] == 404 and isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert line["client"] == "testclient"


def test_unhandled_error_is_logged_with_stack_and_request_id(client, logs):
    r = client.get("/_test/boom", headers={"X-Request-ID": "boom-1"})
    assert r.status_code == 500 and r.json()["error"]["code"] == "internal_error"
    errors = [x for x in logs.lines if x["level"] == "ERROR"]
    assert len(errors) == 1 and errors[0]["request_id"] == "boom-1"
    assert "RuntimeError: secret detail" in errors[0]["exc"]
    (access,) = [x for x in logs.of("citeqa.access") if x["request_id"] == "boom-1"]
    assert access["status"] == 500 and access["route"] == "/_test/boom"


def test_json_formatter_fields():
    try:
        raise ValueError("bad")
    except ValueError:
        record = logging.getLogger("x").makeRecord("x", logging.WARNING, __file__, 1, "n=%d", (3,),
                                                   __import__("sys").exc_info(), extra={"obj": object()})
    out = json.loads(JsonFormatter().format(record))
    assert out["message"] == "n=3" and out["level"] == "WARNING" and out["logger"] == "x"
    assert out["exc"].startswith("Traceback") and "ValueError: bad" in out["exc"]
    assert out["obj"].startswith("<object")
    assert "\n" not in JsonFormatter().format(record)


def test_configure_logging_routes_uvicorn_through_the_root_handler():
    root = logging.getLogger()
    names = ("uvicorn", "uvicorn.error", "uvicorn.access")
    saved = (root.handlers[:], root.level,
             [(logging.getLogger(n).handlers[:], logging.getLogger(n).propagate, logging.getLogger(n).disabled)
              for n in names])
    try:
        logging.getLogger("uvicorn.error").addHandler(logging.NullHandler())
        configure_logging("debug")
        assert len(root.handlers) == 1 and isinstance(root.handlers[0].formatter, JsonFormatter)
        assert root.level == logging.DEBUG
        for n in ("uvicorn", "uvicorn.error"):
            assert logging.getLogger(n).handlers == [] and logging.getLogger(n).propagate
        assert logging.getLogger("uvicorn.access").disabled
        configure_logging(json_logs=False)
        assert not isinstance(root.handlers[0].formatter, JsonFormatter)
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        for n, (handlers, propagate, disabled) in zip(names, saved[2], strict=True):
            lg = logging.getLogger(n)
            lg.handlers[:], lg.propagate, lg.disabled = handlers, propagate, disabled
