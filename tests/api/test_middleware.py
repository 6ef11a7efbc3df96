"""Request bodies (api/middleware.py): a size limit (413), curl's form content type read as
JSON, one well-formed Content-Type (400/415 otherwise), and bodies that cannot be the JSON text
of any request refused with a 422 that says why."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from hypothesis import example, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from citeqa.api.app import create_app
from citeqa.api.middleware import Refusal, is_upload, json_body_problem, read_as_json
from tests.support.corpus import TROOPS_QUESTION


def test_curl_style_form_content_type_is_read_as_json(client):
    r = client.post(
        "/v1/ask", content=json.dumps({"question": TROOPS_QUESTION}),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200 and r.json()["status"] == "answered"


def test_oversized_body_is_413(settings, embedder):
    small = settings.model_copy(update={"max_body_bytes": 2048})
    with TestClient(create_app(small, embedder=embedder)) as c:
        r = c.post("/v1/documents", json={"text": "word " * 1000})
        assert r.status_code == 413
        assert r.json() == {"error": {"code": "payload_too_large", "message": "request body exceeds 2048 bytes"}}
        assert r.headers["content-length"] == str(len(r.content))
        assert c.post("/v1/documents", json={"text": "Small enough."}).status_code == 201


def test_a_body_that_is_not_utf8_is_refused_with_the_offending_byte(client):
    r = client.post("/v1/ask", content=b'{"question": "caf\xe9?"}', headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert r.json() == {"error": {"code": "invalid_request",
                                  "message": "request body is not valid UTF-8 (byte 0xe9 at offset 17)"}}


LONE_SURROGATE = b'{"question": "\\ud800 How many troops did North Korea send?"}'


def test_several_or_malformed_content_types_are_refused_and_never_skip_the_body_checks(client):
    # The framework reads the first of several headers and allows comments; a check that read
    # the header differently once let this body through to a 500.
    refused = [
        [("content-type", "application/json"), ("content-type", "text/plain")],
        [("content-type", "text/plain"), ("content-type", "application/json")],
        [("content-type", "application/json"), ("content-type", "application/json")],
        [("content-type", "application/json (a comment)")],
        [("content-type", "application/json\x0b")],
        [("content-type", "application/json; charset")],
        [("content-type", "application /json")],
        [("content-type", "json")],
    ]
    for headers in refused:
        r = client.post("/v1/ask", content=LONE_SURROGATE, headers=headers)
        assert r.status_code == 400, (headers, r.status_code, r.text)
        assert r.json()["error"]["code"] == "bad_request", r.text
        message = r.json()["error"]["message"]
        assert "Content-Type" in message, message
    r = client.post("/v1/ask", content=LONE_SURROGATE, headers={"content-type": "text/plain"})
    assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_media_type"
    assert "application/json" in r.json()["error"]["message"]
    # Every type that is read as JSON gets the body checks.
    for content_type in ("application/json", "Application/JSON ; charset=\"utf-8\"", "application/merge-patch+json",
                         "application/x-www-form-urlencoded", ""):
        r = client.post("/v1/ask", content=LONE_SURROGATE, headers={"content-type": content_type})
        assert r.status_code == 422 and "surrogate" in r.json()["error"]["message"], (content_type, r.text)


def test_a_well_formed_json_content_type_is_answered(client):
    body = json.dumps({"question": TROOPS_QUESTION})
    for content_type in ("application/json", "application/json; charset=utf-8", "application/json;", ""):
        r = client.post("/v1/ask", content=body, headers={"content-type": content_type})
        assert r.status_code == 200 and r.json()["status"] == "answered", (content_type, r.text)


def test_content_type_rules():
    assert read_as_json([]) is False and read_as_json([b""]) is False and read_as_json([b" "]) is False
    assert read_as_json([b"application/x-www-form-urlencoded"]) is False
    assert read_as_json([b"application/json"]) is True
    assert read_as_json([b'application/vnd.api+json; a=b; c="d;\\"e"']) is True
    assert read_as_json([b"application/json", b"application/json"]) == Refusal(
        400, "bad_request", "send one Content-Type header, not 2")
    for malformed in (b"application/json\x00", b"\xa0application/json", b"application/json, text/plain",
                      b'application/json; a="unclosed', b"application/json; =x", b"/json"):
        refusal = read_as_json([malformed])
        assert isinstance(refusal, Refusal) and refusal.status == 400, malformed
    refusal = read_as_json([b"multipart/form-data; boundary=x"])
    assert isinstance(refusal, Refusal) and refusal.status == 415 and "multipart/form-data" in refusal.message


def test_an_upload_is_one_well_formed_multipart_form_data_type():
    """Only these reach an upload route unread (tests/api/routes/test_documents_upload.py)."""
    for upload in (b"multipart/form-data; boundary=x", b"Multipart/Form-Data;boundary=\"a b\"", b"multipart/form-data"):
        assert is_upload([upload]), upload
    for other in ([], [b""], [b"multipart/mixed; boundary=x"], [b"application/json"], [b"multipart/form-data (x)"],
                  [b"multipart/form-data; boundary=x", b"multipart/form-data; boundary=x"],
                  [b"multipart/form-data; boundary"]):
        assert not is_upload(other), other


def test_json_body_checks_leave_valid_bodies_alone():
    fine = [
        json.dumps({"text": "😀 \u202e e\u0301 \ufeff"}).encode(),  # ensure_ascii: surrogate pairs as escapes
        json.dumps({"text": "😀 \u202e"}, ensure_ascii=False).encode(),
        b'{"text": "\\\\ud800 is text, not an escape"}',
        b'{"text": "' + b"[" * 500 + b'"}',  # brackets inside a string are text
        b'{"a": ' + b"[" * 60 + b"]" * 60 + b"}",
        b"\xef\xbb\xbf{}",
        '{"q": "x"}'.encode("utf-16"),
    ]
    for body in fine:
        assert json_body_problem(body) is None, body
    assert "UTF-8" in json_body_problem(b'{"q": "\xc0\xaf"}')
    assert "surrogate" in json_body_problem(b'{"q": "\\\\\\ud800"}')  # escaped backslash, then an escape
    assert "nested" in json_body_problem(b"[" * 65 + b"]" * 65)
    # The same checks for JSON inside a form field, named as the field.
    assert json_body_problem(b'{"a": "\\ud800"}', what="metadata").startswith("metadata has an unpaired")


_ESCAPE_PIECES = ["\\", "\\\\", "\\ud83d", "\\ude00", "\\uD800", "\\uDFFF", "\\udbff", "\\udc00", "\\u0041", "\\n",
                  "ud800", "udc00", "a", "é", "😀", "d", "u"]


@hsettings(max_examples=2000, deadline=None, derandomize=True, database=None)
@given(st.lists(st.lists(st.sampled_from(_ESCAPE_PIECES), max_size=10).map("".join), min_size=1, max_size=3))
@example(["\\\\ud800\\udc00"])  # a backslash, the text "ud800", then a lone low surrogate
@example(["\\ud800\\\\\\udc00"])  # a high surrogate, a backslash, a low one: both lone
@example(["\\\\\\ud83d\\ude00"])  # a backslash, then a real pair: fine
def test_surrogate_escape_detection_agrees_with_the_json_parser(strings):
    """The middleware's regexes against the truth: what Python's json decodes the body to."""
    body = ('{"q": "' + strings[0] + '", "k": [' + ", ".join(f'"{s}"' for s in strings[1:]) + "]}").encode()
    try:
        decoded = json.loads(body)
    except ValueError:
        return
    texts = [decoded["q"], *decoded["k"]]
    lone = any(0xD800 <= ord(ch) <= 0xDFFF for t in texts for ch in t)
    problem = json_body_problem(body)
    assert (problem is not None and "surrogate" in problem) == lone, (body, problem)
