"""Errors (api/errors.py): one body shape everywhere, and the HTTP status of every domain
failure chosen here alone: a generator's error kind, the domain's exceptions, validation,
unknown routes; in JSON responses, raw middleware responses and chat streams alike."""

from __future__ import annotations

import asyncio
import json
from typing import get_args

import pytest
from fastapi.testclient import TestClient

from citeqa.api.app import create_app
from citeqa.api.errors import DOMAIN_ERRORS, GENERATOR_ERRORS, domain_error, error_body, send_error
from citeqa.index.ingest import InvalidDocument
from citeqa.qa.prompting import PromptError
from citeqa.qa.registry import InvalidGeneratorOptions, UnknownGenerator
from citeqa.qa.types import GeneratorError, GeneratorErrorKind
from tests.support.corpus import TROOPS_QUESTION
from tests.support.scripted import ScriptedGenerator

# What clients have always seen (README: 502/504 with the upstream's message, 503 with how
# to set the generator up); the kinds are qa's words, the statuses api's.
KIND_STATUS = {
    "upstream_error": (502, "upstream_error"),
    "unavailable": (503, "generator_unavailable"),
    "timeout": (504, "upstream_timeout"),
}


def error_of(response) -> dict:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["message"]
    return body["error"]


# -- the mapping -----------------------------------------------------------------------------


def test_every_generator_error_kind_has_its_status_and_code():
    assert set(GENERATOR_ERRORS) == set(get_args(GeneratorErrorKind))
    assert {kind: (h.status, h.code) for kind, h in GENERATOR_ERRORS.items()} == KIND_STATUS


@pytest.mark.parametrize("kind", sorted(KIND_STATUS))
def test_a_generator_error_becomes_its_kind_s_status_with_its_message(kind):
    error = domain_error(GeneratorError(kind, "upstream 500: model crashed"))
    assert error is not None
    assert (error.status, error.code, error.message) == (*KIND_STATUS[kind], "upstream 500: model crashed")


@pytest.mark.parametrize("exc, status, code", [
    (InvalidDocument("text is empty"), 422, "invalid_document"),
    (UnknownGenerator("no generator 'x'"), 422, "unknown_generator"),
    (InvalidGeneratorOptions("Valid options: none"), 422, "invalid_generator_options"),
    (PromptError("no prompt template 'x'"), 503, "generator_unavailable"),
])
def test_the_domain_s_other_exceptions_keep_their_statuses(exc, status, code):
    error = domain_error(exc)
    assert error is not None and (error.status, error.code, error.message) == (status, code, str(exc))
    assert type(exc) in DOMAIN_ERRORS


def test_anything_else_is_not_a_domain_error():
    assert domain_error(ValueError("a bug")) is None
    assert domain_error(KeyError("a bug")) is None


def test_one_body_shape_for_json_and_raw_responses():
    assert error_body("not_found", "no such thing") == {"error": {"code": "not_found", "message": "no such thing"}}
    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(send_error(send, 429, "rate_limited", "too many", [(b"retry-after", b"2")]))
    start, body = sent
    assert start["status"] == 429 and json.loads(body["body"]) == error_body("rate_limited", "too many")
    headers = dict(start["headers"])
    assert headers[b"content-type"] == b"application/json" and headers[b"retry-after"] == b"2"
    assert headers[b"content-length"] == str(len(body["body"])).encode()


# -- over HTTP -------------------------------------------------------------------------------


class FailingGenerator(ScriptedGenerator):
    """Starts an answer, then fails the way an upstream can."""

    name = "failing"

    def __init__(self, kind: GeneratorErrorKind):
        super().__init__("Kim Jong Un sent troops [1]. ")
        self.kind = kind

    def stream(self, question, passages, history=(), options=None):
        stream = super().stream(question, passages, history, options)
        started = stream._pieces

        def fail():
            yield next(started)
            raise GeneratorError(self.kind, f"the upstream failed ({self.kind})")

        stream._pieces = fail()
        return stream


@pytest.fixture
def failing_client(settings, embedder):
    generators = {f"failing-{kind}": FailingGenerator(kind) for kind in KIND_STATUS}
    with TestClient(create_app(settings, embedder=embedder, extra_generators=generators)) as c:
        yield c


@pytest.mark.parametrize("kind", sorted(KIND_STATUS))
def test_ask_answers_a_generator_failure_with_its_status(failing_client, kind):
    r = failing_client.post("/v1/ask", json={"question": TROOPS_QUESTION, "generator": f"failing-{kind}"})
    status, code = KIND_STATUS[kind]
    assert r.status_code == status
    assert error_of(r) == {"code": code, "message": f"the upstream failed ({kind})"}


@pytest.mark.parametrize("kind", sorted(KIND_STATUS))
def test_a_chat_stream_ends_with_the_error_and_the_status_it_would_have_had(failing_client, kind):
    payload = {"model": f"failing-{kind}", "stream": True, "messages": [{"role": "user", "content": TROOPS_QUESTION}]}
    with failing_client.stream("POST", "/v1/chat/completions", json=payload) as r:
        assert r.status_code == 200  # the stream had started: too late for another status
        lines = [line for line in r.iter_lines() if line]
    status, code = KIND_STATUS[kind]
    assert lines[-1] == "data: [DONE]"
    assert json.loads(lines[-2].removeprefix("data: ")) == {
        "error": {"code": code, "message": f"the upstream failed ({kind})", "status": status}}


@pytest.mark.parametrize(
    "path,payload,status",
    [
        ("/v1/documents", {"text": ""}, 422),
        ("/v1/documents", {"text": "   \n\t "}, 422),
        ("/v1/documents", {"title": "no text"}, 422),
        ("/v1/documents", {"text": 42}, 422),
        ("/v1/documents", {"text": "ok.", "doc_id": ""}, 422),
        ("/v1/documents", {"text": "ok.", "doc_id": "a\nb"}, 422),
        ("/v1/documents", {"text": "nul\u0000inside"}, 422),
        ("/v1/documents", {"text": "ok.", "metadata": "not an object"}, 422),
        ("/v1/documents", {"text": "ok.", "unknown": 1}, 422),
        ("/v1/documents", [1, 2, 3], 422),
        ("/v1/ask", {}, 422),
        ("/v1/ask", {"question": ""}, 422),
        ("/v1/ask", {"question": "   "}, 422),
        ("/v1/ask", {"question": "x", "top_k": 0}, 422),
        ("/v1/ask", {"question": "x", "top_k": -3}, 422),
        ("/v1/ask", {"question": "x", "top_k": 10**9}, 422),
        ("/v1/ask", {"question": "x", "top_k": "five"}, 422),
        ("/v1/ask", {"question": "x" * 5000}, 422),
        ("/v1/search", {"query": ""}, 422),
        ("/v1/search", {"query": "x", "top_k": 0}, 422),
    ],
)
def test_bad_input_gets_a_clear_4xx(client, path, payload, status):
    r = client.post(path, json=payload)
    assert r.status_code == status, r.text
    error_of(r)


def test_invalid_json_and_wrong_methods(client):
    r = client.post("/v1/ask", content=b'{"question": ', headers={"content-type": "application/json"})
    assert r.status_code == 422 and "JSON" in error_of(r)["message"]
    r = client.post("/v1/ask", content=b"\xff\xfe not utf-8", headers={"content-type": "application/json"})
    assert r.status_code == 422
    error_of(r)
    assert client.get("/v1/ask").status_code == 405
    assert client.get("/v1/nothing-here").status_code == 404
    error_of(client.get("/v1/nothing-here"))


@pytest.mark.parametrize("params", [{"offset": 2**63}, {"offset": 10**20, "limit": 5}])
def test_an_offset_too_large_for_sqlite_is_a_4xx(client, params):
    r = client.get("/v1/documents", params=params)
    assert r.status_code == 422, r.text
    assert set(r.json()) == {"error"} and "offset" in r.json()["error"]["message"]


def test_openapi_documents_the_error_shape(client):
    spec = client.get("/openapi.json").json()
    error_ref = {"$ref": "#/components/schemas/ErrorOut"}
    assert "ErrorOut" in spec["components"]["schemas"]
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            assert responses["4XX"]["content"]["application/json"]["schema"] == error_ref, (method, path)
            if "422" in responses:
                assert responses["422"]["content"]["application/json"]["schema"] == error_ref, (method, path)
