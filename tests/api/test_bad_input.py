"""Trustworthy under bad input: a catalogue of malformed and awkward requests against a real
``citeqa serve`` process. Each one gets a clear 4xx ``{"error": {"code", "message"}}``, or a
correct answer whose every citation resolves: ``text[start:end] == quote`` for the document
version it names. No response is ever a 5xx or carries a stack trace, and the server log
holds no traceback at the end.

Unicode families (combining marks, emoji with ZWJ sequences and flags, RTL scripts, CRLF,
BOM, zero-width spaces, control characters, very long words, empty titles, non-ASCII doc
ids) are each ingested with the answer *after* the tricky characters, so offsets that drift
on any of them would break the contract.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.support.corpus import TROOPS_QUESTION
from tests.support.servers import serving


def _no_server_error(response: httpx.Response) -> None:
    response.read()
    request = response.request
    assert response.status_code < 500, \
        f"{request.method} {request.url} gave {response.status_code}: {response.text[:500]}"
    assert "Traceback" not in response.text, f"{request.method} {request.url} leaked a traceback"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with serving(tmp_path_factory.mktemp("bad-input")) as srv:  # default settings: bodies up to 5 MB
        yield srv
    assert " 500 " not in srv.log(), srv.log()


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.url, timeout=120, event_hooks={"response": [_no_server_error]}) as c:
        yield c


def error_of(response: httpx.Response, *statuses: int) -> dict:
    assert response.status_code in statuses, (response.status_code, response.text[:500])
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error["code"], str) and error["code"], body
    assert isinstance(error["message"], str) and error["message"], body
    return error


def assert_contract(http: httpx.Client, body: dict) -> None:
    """Every citation (and the short answer) is the stored text at its offsets, fetched back
    by the version it names."""
    assert body["offset_unit"] == "codepoint"
    for c in body["citations"]:
        doc = http.get(f"/v1/documents/{c['doc_id']}", params={"version": c["doc_version"]})
        assert doc.status_code == 200, doc.text
        text = doc.json()["text"]
        assert text[c["start"]:c["end"]] == c["quote"], c
        span = http.get(f"/v1/documents/{c['doc_id']}",
                        params={"version": c["doc_version"], "start": c["start"], "end": c["end"]}).json()["span"]
        assert span["text"] == c["quote"]
        answer = body.get("answer", "")
        assert 0 <= c["answer_start"] < c["answer_end"] <= len(answer)
    short = body.get("short_answer")
    if short:
        text = http.get(f"/v1/documents/{short['doc_id']}", params={"version": short["doc_version"]}).json()["text"]
        assert text[short["start"]:short["end"]] == short["text"]


JSON = {"content-type": "application/json"}


def deep(levels: int, inner: bytes = b"1") -> bytes:
    return b"[" * levels + inner + b"]" * levels


# -- the catalogue ----------------------------------------------------------------------------


@dataclass
class Case:
    id: str
    method: str
    path: str
    statuses: tuple[int, ...]  # acceptable; a 2xx outcome must also keep the citation contract
    json: Any = None
    content: bytes | None = None
    params: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] | list[tuple[str, str | bytes]] = field(default_factory=dict)
    message: str = ""  # expected in the error message (case-insensitive)


def _doc(text: str, **extra: Any) -> dict:
    return {"text": text, **extra}


def _raw(doc: str) -> bytes:
    return doc.encode("utf-8")


CATALOGUE = [
    # Bytes that are not UTF-8, as a JSON body (declared JSON, curl-style form, no type at all).
    Case("invalid-utf8-document", "POST", "/v1/documents", (422,),
         content=b'{"text": "Caf\xe9 au lait. The end."}', headers=JSON, message="UTF-8"),
    Case("invalid-utf8-question", "POST", "/v1/ask", (422,),
         content=b'{"question": "How many troops \xc3\x28 did North Korea send?"}', headers=JSON, message="UTF-8"),
    Case("invalid-utf8-form", "POST", "/v1/search", (422,),
         content=b'{"query": "troops \xff"}', headers={"content-type": "application/x-www-form-urlencoded"},
         message="UTF-8"),
    Case("utf8-encoded-surrogate-bytes", "POST", "/v1/ask", (422,),
         content=b'{"question": "troops \xed\xa0\x80?"}', headers=JSON, message="UTF-8"),
    Case("not-utf8-at-all", "POST", "/v1/ask", (422,), content=b"\xff\xfe\xfd garbage", headers=JSON),
    # NUL and control characters.
    Case("nul-in-text", "POST", "/v1/documents", (422,), json=_doc("Hello\x00 world. Second one.")),
    Case("nul-in-title", "POST", "/v1/documents", (422,), json=_doc("Fine text.", title="a\x00b")),
    Case("nul-in-doc-id", "POST", "/v1/documents", (422,), json=_doc("Fine text.", doc_id="a\x00b")),
    Case("newline-in-doc-id", "POST", "/v1/documents", (422,), json=_doc("Fine text.", doc_id="a\nb")),
    Case("nul-in-question", "POST", "/v1/ask", (200, 422),
         json={"question": "How many troops\x00 did North Korea send?"}),
    Case("control-chars-in-question", "POST", "/v1/ask", (200, 422),
         json={"question": "How many\x01\x02 troops\x1b[31m did North Korea send?\x7f"}),
    Case("nul-in-search", "POST", "/v1/search", (200, 422), json={"query": "troops\x00\x00"}),
    Case("only-nul-question", "POST", "/v1/ask", (422,), json={"question": "\x00\x00"}),
    # Size.
    Case("body-10MB-declared", "POST", "/v1/documents", (413,),
         content=json.dumps({"text": "Tungsten is dense. " * 550_000}).encode(), headers=JSON, message="exceeds"),
    Case("question-too-long", "POST", "/v1/ask", (422,), json={"question": "troops " * 1000}),
    # Nesting.
    Case("nested-100k-arrays", "POST", "/v1/ask", (400, 422), content=deep(100_000), headers=JSON),
    Case("nested-100k-unclosed", "POST", "/v1/ask", (400, 422), content=b"[" * 100_000, headers=JSON),
    Case("nested-100k-objects", "POST", "/v1/ask", (400, 422),
         content=b'{"a":' * 100_000 + b"1" + b"}" * 100_000, headers=JSON),
    Case("nested-500-generator-options", "POST", "/v1/ask", (400, 422),
         content=b'{"question": "troops?", "generator_options": {"a": ' + deep(500) + b"}}", headers=JSON),
    Case("nested-300-metadata", "POST", "/v1/documents", (422,),
         content=b'{"text": "Deep metadata here.", "metadata": {"a": ' + deep(300) + b"}}", headers=JSON,
         message="nested"),
    Case("nested-2000-chat-content", "POST", "/v1/chat/completions", (400, 422),
         content=b'{"messages": [{"role": "user", "content": ' + deep(2000, b'"x"') + b"}]}", headers=JSON),
    # Numbers.
    Case("top_k-1e12-ask", "POST", "/v1/ask", (422,), json={"question": TROOPS_QUESTION, "top_k": 10**12}),
    Case("top_k-1e12-search", "POST", "/v1/search", (422,), json={"query": "troops", "top_k": 10**12}),
    Case("top_k-1e12-chat", "POST", "/v1/chat/completions", (422,),
         json={"messages": [{"role": "user", "content": TROOPS_QUESTION}], "top_k": 10**12}),
    Case("top_k-1e40-ask", "POST", "/v1/ask", (422,), content=b'{"question": "troops?", "top_k": 1' + b"0" * 40 + b"}",
         headers=JSON),
    Case("top_k-negative-ask", "POST", "/v1/ask", (422,), json={"question": TROOPS_QUESTION, "top_k": -3}),
    Case("top_k-negative-search", "POST", "/v1/search", (422,), json={"query": "troops", "top_k": -1}),
    Case("top_k-negative-chat", "POST", "/v1/chat/completions", (422,),
         json={"messages": [{"role": "user", "content": TROOPS_QUESTION}], "top_k": -1}),
    Case("top_k-float", "POST", "/v1/search", (422,), json={"query": "troops", "top_k": 2.5}),
    Case("top_k-NaN", "POST", "/v1/ask", (422,), content=b'{"question": "troops?", "top_k": NaN}', headers=JSON),
    Case("top_k-string", "POST", "/v1/ask", (422,), json={"question": "troops?", "top_k": "five"}),
    Case("int-5000-digits", "POST", "/v1/ask", (400, 422),
         content=b'{"question": "troops?", "top_k": ' + b"9" * 5000 + b"}", headers=JSON),
    Case("chat-temperature-infinity", "POST", "/v1/chat/completions", (200, 422),
         content=b'{"messages": [{"role": "user", "content": "How many troops did North Korea send?"}], '
                 b'"temperature": Infinity}', headers=JSON),
    Case("chat-max-tokens-1e400", "POST", "/v1/chat/completions", (422,),
         content=b'{"messages": [{"role": "user", "content": "troops?"}], "max_tokens": 1e400}', headers=JSON),
    Case("metadata-NaN", "POST", "/v1/documents", (422,),
         content=b'{"text": "Not a number here.", "metadata": {"x": NaN}}', headers=JSON, message="finite"),
    # Pagination.
    Case("limit-negative", "GET", "/v1/documents", (422,), params={"limit": -1}),
    Case("limit-zero", "GET", "/v1/documents", (422,), params={"limit": 0}),
    Case("limit-huge", "GET", "/v1/documents", (422,), params={"limit": 10**30}),
    Case("offset-negative", "GET", "/v1/documents", (422,), params={"offset": -1}),
    Case("offset-2**63", "GET", "/v1/documents", (200, 422), params={"offset": 2**63}),
    Case("offset-1e20", "GET", "/v1/documents", (200, 422), params={"offset": 10**20}),
    Case("offset-max-int64", "GET", "/v1/documents", (200,), params={"offset": 2**63 - 1, "limit": 1000}),
    Case("limit-not-a-number", "GET", "/v1/documents", (422,), params={"limit": "ten"}),
    # Versions and spans.
    Case("unknown-version", "GET", "/v1/documents/seed-russia-north-korea", (404,), params={"version": "0" * 16}),
    Case("version-sql", "GET", "/v1/documents/seed-russia-north-korea", (404,),
         params={"version": "' OR 1=1; DROP TABLE versions; --"}),
    Case("version-empty", "GET", "/v1/documents/seed-russia-north-korea", (200, 404, 422), params={"version": ""}),
    Case("version-10k-chars", "GET", "/v1/documents/seed-russia-north-korea", (404, 414, 422),
         params={"version": "v" * 10_000}),
    Case("version-unicode", "GET", "/v1/documents/seed-russia-north-korea", (404,), params={"version": "é🇫🇷\u202e"}),
    Case("version-invalid-utf8", "GET", "/v1/documents/seed-russia-north-korea?version=%FF%FE", (404, 422)),
    Case("span-2**63", "GET", "/v1/documents/seed-russia-north-korea", (422,),
         params={"start": 2**63, "end": 2**63 + 1}),
    Case("span-1e30", "GET", "/v1/documents/seed-russia-north-korea", (422,), params={"start": 0, "end": 10**30}),
    Case("span-reversed", "GET", "/v1/documents/seed-russia-north-korea", (422,), params={"start": 9, "end": 3}),
    Case("span-start-only", "GET", "/v1/documents/seed-russia-north-korea", (422,), params={"start": 3}),
    Case("span-negative", "GET", "/v1/documents/seed-russia-north-korea", (422,), params={"start": -1, "end": 3}),
    Case("doc-id-invalid-utf8-path", "GET", "/v1/documents/%FF%FE", (404, 422)),
    Case("doc-id-encoded-surrogate-path", "GET", "/v1/documents/%ED%A0%80", (404, 422)),
    Case("delete-invalid-utf8-path", "DELETE", "/v1/documents/%FF", (404, 422)),
    # Lone surrogates: Python's json accepts "\ud800", but it is not Unicode.
    Case("surrogate-in-text", "POST", "/v1/documents", (422,), content=b'{"text": "Bad \\ud800 here. More."}',
         headers=JSON, message="surrogate"),
    Case("surrogate-low-in-text", "POST", "/v1/documents", (422,), content=b'{"text": "Bad \\uDC00 here."}',
         headers=JSON, message="surrogate"),
    Case("surrogate-reversed-pair", "POST", "/v1/documents", (422,), content=b'{"text": "Bad \\udc00\\ud800 here."}',
         headers=JSON, message="surrogate"),
    Case("surrogate-in-title", "POST", "/v1/documents", (422,),
         content=b'{"text": "Good text.", "title": "\\ud800"}', headers=JSON),
    Case("surrogate-in-doc-id", "POST", "/v1/documents", (422,),
         content=b'{"text": "Good text.", "doc_id": "x\\udfff"}', headers=JSON),
    Case("surrogate-in-metadata-value", "POST", "/v1/documents", (422,),
         content=b'{"text": "Good text with metadata.", "metadata": {"k": "\\ud800"}}', headers=JSON),
    Case("surrogate-in-metadata-key", "POST", "/v1/documents", (422,),
         content=b'{"text": "Good text with a key.", "metadata": {"\\ud800": 1}}', headers=JSON),
    Case("surrogate-in-question", "POST", "/v1/ask", (422,),
         content=b'{"question": "How many troops \\ud800 did North Korea send?"}', headers=JSON),
    Case("surrogate-in-query", "POST", "/v1/search", (422,), content=b'{"query": "troops \\ud83d"}', headers=JSON),
    Case("surrogate-in-chat-message", "POST", "/v1/chat/completions", (422,),
         content=b'{"messages": [{"role": "user", "content": "How many troops \\ud800 did North Korea send?"}]}',
         headers=JSON, message="surrogate"),
    Case("surrogate-in-chat-stream", "POST", "/v1/chat/completions", (422,),
         content=b'{"stream": true, "messages": [{"role": "user", "content": "troops \\udead?"}]}', headers=JSON),
    Case("surrogate-in-chat-content-part", "POST", "/v1/chat/completions", (422,),
         content=b'{"messages": [{"role": "user", "content": [{"type": "text", "text": "troops \\ud800?"}]}]}',
         headers=JSON),
    Case("surrogate-in-chat-model", "POST", "/v1/chat/completions", (422,),
         content=b'{"model": "\\ud800", "messages": [{"role": "user", "content": "troops?"}]}', headers=JSON),
    Case("surrogate-in-generator", "POST", "/v1/ask", (422,),
         content=b'{"question": "troops?", "generator": "\\ud800"}', headers=JSON),
    Case("surrogate-in-unknown-field", "POST", "/v1/ask", (422,),
         content=b'{"question": "troops?", "\\ud800": 1}', headers=JSON),
    # Escaped backslashes before "ud800" are text, not an escape: accepted.
    Case("escaped-backslash-not-a-surrogate", "POST", "/v1/search", (200,),
         content=b'{"query": "troops \\\\ud800 \\\\\\\\ud800"}', headers=JSON),
    Case("surrogate-pair-escape-is-fine", "POST", "/v1/search", (200,),
         content=b'{"query": "troops \\ud83d\\ude00 \\uD83C\\uDDEB\\uD83C\\uDDF7"}', headers=JSON),
    # Other shapes of body.
    Case("bom-before-json", "POST", "/v1/ask", (200, 422), content=b"\xef\xbb\xbf" + _raw(json.dumps(
        {"question": TROOPS_QUESTION})), headers=JSON),
    Case("utf16-json", "POST", "/v1/ask", (200, 422),
         content=json.dumps({"question": TROOPS_QUESTION}).encode("utf-16"), headers=JSON),
    Case("empty-body", "POST", "/v1/ask", (422,), content=b"", headers=JSON),
    Case("json-null", "POST", "/v1/ask", (422,), content=b"null", headers=JSON),
    Case("json-string", "POST", "/v1/documents", (422,), content=b'"just text"', headers=JSON),
    Case("truncated-json", "POST", "/v1/documents", (422,), content=b'{"text": "abc', headers=JSON),
    Case("trailing-garbage", "POST", "/v1/ask", (422,), content=b'{"question": "troops?"} trailing', headers=JSON),
    Case("text-plain-body", "POST", "/v1/ask", (415, 422), content=b'{"question": "troops?"}',
         headers={"content-type": "text/plain"}),
    # A body the checks would refuse, under a Content-Type the checks could read otherwise than
    # the framework does: refused for the header, whatever the body.
    *[Case(f"content-type-{name}-{path.rsplit('/', 1)[1]}", "POST", path, (400,), content=body, headers=headers,
           message="Content-Type")
      for name, headers in [
          ("twice", [("content-type", "application/json"), ("content-type", "text/plain")]),
          ("twice-reversed", [("content-type", "text/plain"), ("content-type", "application/json")]),
          ("with-comment", [("content-type", "application/json (x)")]),
          ("stray-byte", [("content-type", b"application/json\xa0")])]
      for path, body in [("/v1/ask", b'{"question": "\\ud800 troops?"}'),
                         ("/v1/documents", b'{"text": "Troops \\udc00 went."}'),
                         ("/v1/chat/completions", b'{"messages": [{"role": "user", "content": "\\ud800?"}]}')]],
    Case("surrogate-as-text-plain", "POST", "/v1/search", (415,), content=b'{"query": "\\ud800 troops"}',
         headers={"content-type": "text/plain"}, message="application/json"),
    Case("duplicate-keys", "POST", "/v1/ask", (200, 422),
         content=b'{"question": "x", "question": "How many troops did North Korea send?"}', headers=JSON),
    Case("zero-width-only-question", "POST", "/v1/ask", (422,), json={"question": "\u200b\u200c\u200d\ufeff"}),
    Case("whitespace-only-text", "POST", "/v1/documents", (422,), json=_doc("\u3000\u00a0\u2028 \r\n\t")),
    Case("zero-width-only-text", "POST", "/v1/documents", (201, 422), json=_doc("\u200b\u200b\u200b")),
    Case("bom-only-text", "POST", "/v1/documents", (201, 422), json=_doc("\ufeff")),
    Case("combining-only-text", "POST", "/v1/documents", (201, 422), json=_doc("\u0301\u0301\u0301")),
    Case("title-too-long", "POST", "/v1/documents", (422,), json=_doc("Fine text.", title="t" * 1001)),
    Case("doc-id-too-long", "POST", "/v1/documents", (422,), json=_doc("Fine text.", doc_id="d" * 257)),
    Case("metadata-not-object", "POST", "/v1/documents", (422,), json=_doc("Fine text.", metadata=[1, 2])),
    Case("chat-no-messages", "POST", "/v1/chat/completions", (422,), json={"messages": []}),
    Case("chat-last-not-user", "POST", "/v1/chat/completions", (422,),
         json={"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "troops?"}]}),
    Case("chat-unknown-role", "POST", "/v1/chat/completions", (422,),
         json={"messages": [{"role": "wizard", "content": TROOPS_QUESTION}]}),
    Case("chat-image-only", "POST", "/v1/chat/completions", (422,),
         json={"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}),
    Case("chat-unknown-model", "POST", "/v1/chat/completions", (404,),
         json={"model": "gpt-\u202e4", "messages": [{"role": "user", "content": TROOPS_QUESTION}]}),
    Case("generator-options-wrong-type", "POST", "/v1/ask", (422,),
         json={"question": TROOPS_QUESTION, "generator_options": "fast"}),
    Case("unknown-generator", "POST", "/v1/ask", (422,), json={"question": TROOPS_QUESTION, "generator": "🤖"}),
]


@pytest.mark.slow
@pytest.mark.parametrize("case", CATALOGUE, ids=[c.id for c in CATALOGUE])
def test_catalogue(http, case):
    kwargs: dict[str, Any] = {"headers": case.headers}
    if case.params:  # (an empty params= would drop a query string written into the path)
        kwargs["params"] = case.params
    if case.json is not None:
        kwargs["json"] = case.json
    if case.content is not None:
        kwargs["content"] = case.content
    try:
        r = http.request(case.method, case.path, **kwargs)
    except httpx.TransportError as exc:  # pragma: no cover - reported, not hidden
        pytest.fail(f"{case.id}: the connection failed ({exc!r}); the server must answer")
    assert r.status_code in case.statuses, (case.id, r.status_code, r.text[:300])
    if r.status_code >= 400:
        error = error_of(r, r.status_code)
        assert case.message.lower() in error["message"].lower(), (case.id, error)
    elif r.request.url.path == "/v1/ask":
        assert_contract(http, r.json())
    elif r.request.url.path == "/v1/chat/completions":
        assert_contract(http, {**r.json(), "answer": r.json()["choices"][0]["message"]["content"]})
    elif r.request.url.path == "/v1/search":
        for hit in r.json()["hits"]:
            text = http.get(f"/v1/documents/{hit['doc_id']}", params={"version": hit["doc_version"]}).json()["text"]
            assert text[hit["start"]:hit["end"]] == hit["text"]
    # Whatever happened, the server still answers.
    assert http.get("/readyz").status_code == 200


@pytest.mark.slow
def test_10mb_body_streamed_without_a_length_gets_413(http):
    chunk = b"x" * 65_536

    def body():
        yield b'{"text": "'
        for _ in range(10_000_000 // len(chunk) + 1):
            yield chunk
        yield b'"}'

    try:
        r = http.post("/v1/documents", content=body(), headers=JSON)
    except httpx.TransportError:
        # Refusing to read the rest of an oversized upload and closing is fair; the server
        # must survive it.
        assert http.get("/readyz").status_code == 200
        return
    assert error_of(r, 413)["code"] == "payload_too_large"


@pytest.mark.slow
def test_stored_documents_stay_listable_after_the_catalogue(http):
    """Nothing the catalogue sent may have been stored in a form that cannot be served back."""
    offset = 0
    while offset is not None:
        page = http.get("/v1/documents", params={"limit": 1000, "offset": offset})
        assert page.status_code == 200, page.text
        for d in page.json()["documents"]:
            assert http.get(f"/v1/documents/{d['doc_id']}").status_code == 200
        offset = page.json()["next_offset"]


# -- Unicode families: ingest, ask about a sentence after the tricky part, resolve citations --


@dataclass
class Family:
    id: str
    text: str
    question: str
    fact: str  # must appear in a citation's quote
    title: str = ""
    doc_id: str = ""


ZWJ_FAMILY = "\U0001F469\u200D\U0001F469\u200D\U0001F467\u200D\U0001F466"
CODER = "\U0001F468\U0001F3FD\u200D\U0001F4BB"
FLAGS = "\U0001F1EF\U0001F1F5\U0001F1EB\U0001F1F7\U0001F3F4\U000E0067\U000E0062\U000E0073\U000E0063\U000E0074\U000E007F"

FAMILIES = [
    Family("combining-marks",
           "Cafe\u0301 owners in Ve\u0301zelay say re\u0301sume\u0301s pile up each spring. "
           "The Zalo\u0308grad n\u0303andu\u0301 festival is loud. "
           "The Vezelay ferry carries 900 cyclists across the river every morning.",
           "How many cyclists does the Vezelay ferry carry across the river every morning?", "900 cyclists",
           title="Ve\u0301zelay"),
    Family("emoji-zwj-flags",
           f"Our {ZWJ_FAMILY} family and a {CODER} coder waved {FLAGS} flags 🎉🎉. "
           "Skin tones 👍🏻👍🏿 and keycaps 1\uFE0F\u20E3 came next. "
           "The Quillon observatory telescope has a mirror 4.2 metres wide.",
           "How wide is the mirror of the Quillon observatory telescope?", "4.2 metres",
           title=f"Emoji {FLAGS}"),
    Family("rtl-hebrew-arabic",
           "שלום עולם, זהו משפט בעברית. مرحبا بالعالم، هذه جملة عربية. "
           "\u202eReversed override text\u202c and \u200fmarks\u200e here. "
           "The Marrowind canal was dug by 3,400 workers in 1822.",
           "How many workers dug the Marrowind canal?", "3,400 workers", title="עברית وعربي"),
    Family("crlf",
           "First line of the log.\r\nSecond line\r\n\r\n\r\n"
           "The Vesper lighthouse on Crail Point was built in 1874.\r\nIt still works.\r\n",
           "When was the Vesper lighthouse on Crail Point built?", "1874"),
    Family("lone-cr-and-separators",
           "Old Mac line.\rAnother one.\u2028Line separator.\u2029Paragraph separator.\x85Next line. "
           "The Brennock viaduct has 21 stone arches.",
           "How many stone arches does the Brennock viaduct have?", "21 stone arches"),
    Family("bom",
           "\ufeffA leading byte order mark.\ufeff Another one inside\ufeff. "
           "The Ostrava tram depot stores 64 trams overnight.",
           "How many trams does the Ostrava tram depot store overnight?", "64 trams", title="\ufeffBOM"),
    Family("zero-width",
           "Zero\u200bwidth\u200c joiners\u200d and\u2060 word joiners\ufeff hide here. "
           "The Kettleby\u200b reservoir holds 18 million litres of water.",
           "How much water does the Kettleby reservoir hold?", "18 million litres"),
    Family("control-chars",
           "A bell \x07 and an escape \x1b[31mred\x1b[0m sequence. Tab\tand\x0bvertical\x0cfeed. DEL \x7f. "
           "The Harwick bakery sells 700 loaves every Saturday.",
           "How many loaves does the Harwick bakery sell every Saturday?", "700 loaves"),
    Family("very-long-word",
           "Supercalifragilistic" + "x" * 60_000 + " is a very long word indeed. " + "ab" * 5_000 + ". "
           "The Pellow glacier retreated 40 metres last year.",
           "How far did the Pellow glacier retreat last year?", "40 metres"),
    Family("empty-title",
           "The Dunmore clock tower chimes 12 times at noon.",
           "How many times does the Dunmore clock tower chime at noon?", "12 times", title=""),
    Family("astral-and-cjk",
           "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝕞𝕒𝕥𝕙 and 東京の天気は晴れです。 𓀀𓀁 hieroglyphs 🀄. "
           "The Sorrel ferry terminal handles 5,000 passengers a day.",
           "How many passengers a day does the Sorrel ferry terminal handle?", "5,000 passengers"),
    Family("unicode-doc-id",
           "Ünïcödé identifiers are fine. The Ashgrove orchard grows 30 kinds of apple.",
           "How many kinds of apple does the Ashgrove orchard grow?", "30 kinds", doc_id="café-🍎-עץ/ت"),
]


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES, ids=[f.id for f in FAMILIES])
def test_unicode_family_offsets_survive(http, family):
    doc_id = family.doc_id or f"unicode-{family.id}"
    r = http.post("/v1/documents", json={"doc_id": doc_id, "title": family.title, "text": family.text})
    assert r.status_code in (200, 201), r.text
    version = r.json()["doc_version"]
    stored = http.get(f"/v1/documents/{doc_id}", params={"version": version})
    assert stored.status_code == 200, stored.text
    doc = stored.json()
    assert doc["text"] == family.text and doc["title"] == family.title  # stored exactly as sent
    previous_end = 0
    for s in doc["sentences"]:
        assert previous_end <= s["start"] < s["end"] <= len(family.text)
        previous_end = s["end"]

    for question in (family.question, _decorate(family)):
        body = http.post("/v1/ask", json={"question": question}).json()
        assert body["status"] in ("answered", "partial"), (question, body)
        assert any(c["doc_id"] == doc_id and family.fact in c["quote"] for c in body["citations"]), body
        assert_contract(http, body)

    chat = http.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": family.question}]})
    message = chat.json()["choices"][0]["message"]
    assert any(family.fact in c["quote"] for c in message["citations"]), message
    assert_contract(http, {**message, "answer": message["content"]})
    for a in message["annotations"]:
        span = a["url_citation"]
        assert message["content"][span["start_index"]:span["end_index"]].startswith("[")
        got = http.get(span["url"])
        assert got.status_code == 200 and got.json()["span"]["text"] in family.text

    # Streamed: the final chunk carries every citation, under the same contract.
    with http.stream("POST", "/v1/chat/completions",
                     json={"stream": True, "messages": [{"role": "user", "content": _decorate(family)}]}) as stream:
        assert stream.status_code == 200
        events = [line[len("data: "):] for line in stream.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert not any("error" in c for c in chunks), chunks
    final = chunks[-1]
    assert any(family.fact in c["quote"] for c in final["citations"]), final
    assert_contract(http, final)


def _decorate(family: Family) -> str:
    """The question with the family's own awkward characters around it."""
    extras = {
        "combining-marks": ("", ""),  # below: the name itself with a combining accent
        "emoji-zwj-flags": (f"{ZWJ_FAMILY} ", f" {FLAGS} 🔭"),
        "rtl-hebrew-arabic": ("שאלה: ", " ؟"),
        "crlf": ("", "\r\n"),
        "lone-cr-and-separators": ("\r", "\u2028"),
        "bom": ("\ufeff", ""),
        "zero-width": ("\u200b", "\u200d"),
        "control-chars": ("\x07", "\x1b[0m"),
        "very-long-word": ("", " " + "z" * 300),
        "empty-title": ("", ""),
        "astral-and-cjk": ("𝕢 ", " 東京"),
        "unicode-doc-id": ("🍎 ", ""),
    }
    before, after = extras[family.id]
    if family.id == "combining-marks":
        return family.question.replace("Vezelay", "Ve\u0301zelay")
    return before + family.question + after


# -- below the HTTP layer: what ingest refuses, so it can always be served back --------------


def _nested(levels: int) -> Any:
    value: Any = "leaf"
    for i in range(levels):
        value = {"k": value} if i % 2 else [value]
    return value


@pytest.mark.parametrize("item_kwargs, message", [
    ({"metadata": {"k": "\ud800"}}, "surrogate"),
    ({"metadata": {"\udfff": 1}}, "surrogate"),
    ({"metadata": {"list": [1, ["\ud83d"]]}}, "surrogate"),
    ({"title": "T\udc00"}, "surrogate"),
    ({"doc_id": "id\ud800"}, "surrogate"),
    ({"metadata": {"deep": _nested(300)}}, "nested"),
    ({"metadata": {"deep": _nested(2000)}}, "nested"),
    ({"metadata": {"x": math.nan}}, "finite"),
    ({"metadata": {"x": [math.inf]}}, "finite"),
    ({"metadata": {"x": object()}}, "JSON"),
])
def test_ingest_refuses_what_could_not_be_served_back(item_kwargs, message):
    # `citeqa ingest file.jsonl` reaches validate() without any HTTP layer in front of it.
    from citeqa.index.ingest import DocumentInput, InvalidDocument, validate

    with pytest.raises(InvalidDocument, match=message):
        validate(DocumentInput(text="Fine text here.", **item_kwargs))


def test_ingest_accepts_reasonable_metadata():
    from citeqa.index.ingest import DocumentInput, validate

    metadata = {"source": "é 🍎 עץ", "n": [1, 2.5, None, True, {"deep": _nested(20)}], "null\x00": "ok"}
    validate(DocumentInput(text="Fine text here.", metadata=metadata))
