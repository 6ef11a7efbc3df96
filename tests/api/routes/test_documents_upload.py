"""Files through ``POST /v1/documents`` as multipart/form-data and back out through
``GET /v1/documents/{id}`` and ``/original`` (api/routes/documents.py, api/middleware.py),
through the real app: real extractors, model, SQLite and FAISS. Every file is built here
(tests/index/extract/builders.py), so each assertion knows the truth."""

from __future__ import annotations

import hashlib
import json
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import quote, unquote

import pytest
from fastapi.testclient import TestClient

from citeqa.api.app import create_app
from citeqa.api.services import extraction_limits
from citeqa.api.settings import Settings
from citeqa.index.extract import Limits
from tests.index.extract.bad_inputs import CATALOGUE, BadInput
from tests.index.extract.builders import Page, docx_document, fpdf_document, news_page

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
PAGE_1 = ("The north tower was painted blue in the spring of 2019.",
          "Its cables were replaced two years later by a crew from Basel.")
PAGE_2 = ("Tolls are charged on weekdays only.", "Cyclists cross for free at any hour of the day.")
PAGE_3 = ("The third page holds the budget of the bridge.",)
MARKDOWN = (
    "# Ferry timetable\n\n"
    "The **first ferry** leaves at *six* in the morning.\n\n"
    "- Tickets are sold at the [harbour office](https://harbour.example.org/tickets).\n"
    "- Bicycles travel free.\n\n"
    "```\ncode that is not prose\n```\n"
)


@dataclass(frozen=True)
class Upload:
    name: str
    filename: str
    data: bytes
    declared: str  # the part's Content-Type
    media_type: str  # what detection must find
    says: tuple[str, ...]  # text the extracted document holds
    not_says: tuple[str, ...] = ()  # markup or boilerplate it must not hold


def _pdf() -> bytes:
    return fpdf_document([Page("Bridge report", PAGE_1), Page("Tolls", PAGE_2), Page(None, PAGE_3)],
                         title="Bridge report")


def uploads() -> list[Upload]:
    return [
        Upload("html", "bridge.html", news_page().encode(), "text/html", "text/html",
               ("The council will publish the final cost estimate next month.",),
               ("<p>", "Subscribe now", "Phone X", "Privacy policy")),
        # Declared as octet-stream: the content says PDF.
        Upload("pdf", "report.pdf", _pdf(), "application/octet-stream", "application/pdf", PAGE_1 + PAGE_2 + PAGE_3),
        Upload("markdown", "ferry.md", MARKDOWN.encode(), "text/markdown", "text/markdown",
               ("The first ferry leaves at six in the morning.", "Tickets are sold at the harbour office."),
               ("**", "](", "# Ferry", "```")),
        Upload("docx", "market.docx", docx_document("Market notes", [("h1", "Opening hours"),
               ("p", "The market opens at seven every weekday."), ("li", "Apples are sold by the kilo.")]),
               "application/octet-stream", DOCX, ("The market opens at seven every weekday.",
                                                  "Apples are sold by the kilo.")),
        Upload("text", "notes.txt", "Café owners met on Monday. They agreed on longer hours.".encode(), "text/plain",
               "text/plain", ("Café owners met on Monday.",)),
    ]


def post_file(client, data: bytes, filename: str = "file.bin", declared: str = "application/octet-stream",
              **fields: str):
    return client.post("/v1/documents", files={"file": (filename, data, declared)}, data=fields)


def documents_total(client) -> int:
    return client.get("/v1/documents", params={"limit": 1}).json()["total"]


@contextmanager
def app_with(embedder, tmp_path, **changes):
    """An app of its own (no seeds: these tests need none) with some settings changed."""
    settings = Settings(data_dir=tmp_path / "own", seeds_dir=None, **changes)
    with TestClient(create_app(settings, embedder=embedder)) as c:
        yield c


@pytest.mark.parametrize("upload", uploads(), ids=lambda u: u.name)
def test_each_format_is_stored_as_its_text_with_its_source_and_original(client, upload):
    before = documents_total(client)
    r = post_file(client, upload.data, upload.filename, upload.declared, doc_id=f"files/{upload.name}")
    assert r.status_code == 201, r.text
    written = r.json()
    assert written["created"] is True and written["sentence_count"] > 0
    assert written["source"]["media_type"] == upload.media_type
    assert documents_total(client) == before + 1

    doc = client.get(f"/v1/documents/files/{upload.name}").json()
    for text in upload.says:
        assert text in doc["text"], (text, doc["text"])
    for markup in upload.not_says:
        assert markup not in doc["text"], (markup, doc["text"])
    for s in doc["sentences"]:
        assert doc["text"][s["start"]:s["end"]].strip()
    source = doc["source"]
    assert source == written["source"]
    assert source["media_type"] == upload.media_type
    assert source["filename"] == upload.filename
    assert source["size"] == len(upload.data)
    assert source["sha256"] == hashlib.sha256(upload.data).hexdigest()
    assert source["page_count"] == (3 if upload.name == "pdf" else 0)
    assert source["original_url"] == (f"/v1/documents/{quote('files/' + upload.name, safe='')}/original"
                                      f"?version={doc['doc_version']}")

    original = client.get(source["original_url"])
    assert original.status_code == 200
    assert original.content == upload.data
    assert original.headers["content-type"] == upload.media_type
    assert original.headers["x-content-type-options"] == "nosniff"
    assert original.headers["etag"] == f'"{source["sha256"]}"'
    assert original.headers["content-disposition"].startswith("attachment;")
    assert original.headers["content-disposition"].endswith(f"filename*=UTF-8''{quote(upload.filename)}")
    # The unquoted path names the same document (its id holds a slash).
    assert client.get(f"/v1/documents/files/{upload.name}/original").content == upload.data
    # A second request with the ETag is answered without the bytes.
    assert client.get(source["original_url"], headers={"If-None-Match": original.headers["etag"]}).status_code == 304

    again = post_file(client, upload.data, upload.filename, upload.declared, doc_id=f"files/{upload.name}")
    assert again.status_code == 200, again.text
    assert again.json()["created"] is False and again.json()["doc_version"] == written["doc_version"]
    assert documents_total(client) == before + 1


def test_pdf_spans_say_their_pages(client):
    pdf = _pdf()
    version = post_file(client, pdf, "report.pdf", doc_id="report").json()["doc_version"]
    text = client.get("/v1/documents/report").json()["text"]

    def span(start: int, end: int) -> dict:
        r = client.get("/v1/documents/report", params={"version": version, "start": start, "end": end})
        assert r.status_code == 200, r.text
        got = r.json()["span"]
        assert got["text"] == text[start:end]
        return got

    for page, sentences in ((1, PAGE_1), (2, PAGE_2), (3, PAGE_3)):
        for sentence in sentences:
            at = text.index(sentence)
            got = span(at, at + len(sentence))
            assert (got["page"], got["end_page"]) == (page, None), sentence
    # From the last sentence of page 1 into the first of page 2.
    start = text.index(PAGE_1[-1]) + 4
    end = text.index(PAGE_2[0]) + 5
    got = span(start, end)
    assert (got["page"], got["end_page"]) == (1, 2)
    # Pages 1 to 3.
    got = span(0, len(text))
    assert (got["page"], got["end_page"]) == (1, 3)
    # A version without pages (a JSON body) has none.
    client.post("/v1/documents", json={"doc_id": "plain", "text": "One sentence here. And another."})
    assert client.get("/v1/documents/plain", params={"start": 0, "end": 5}).json()["span"] == {
        "start": 0, "end": 5, "text": "One s", "page": None, "end_page": None}


def test_form_fields_name_title_and_metadata_and_override_the_file(client):
    html = news_page().encode()
    r = post_file(client, html, "page.html", "text/html", doc_id="news/bridge", title="My title",
                  metadata=json.dumps({"author": "Someone Else", "topic": "roads"}))
    assert r.status_code == 201, r.text
    doc = client.get("/v1/documents/news/bridge").json()
    assert doc["title"] == "My title"
    assert doc["metadata"]["author"] == "Someone Else" and doc["metadata"]["topic"] == "roads"
    assert doc["metadata"]["url"] == "https://gazette.example.org/news/2024/03/council-approves-bridge"
    # Without them: the file's own title; empty fields (as a browser sends them) are absent.
    r = post_file(client, html, "page.html", "text/html", doc_id="", title="", metadata="")
    assert r.status_code == 201, r.text
    doc = client.get(f"/v1/documents/{quote(r.json()['doc_id'], safe='')}").json()
    assert doc["title"] == "Council approves new river bridge" and doc["metadata"]["author"] == "Jane Miller"


@pytest.mark.parametrize("fields, says", [
    ({"metadata": "{not json"}, "metadata: is not valid JSON"),
    ({"metadata": "[1, 2]"}, "metadata: must be a JSON object"),
    ({"metadata": json.dumps({"x": "y" * 70_000})}, "metadata: larger than the limit of 65536 bytes"),
    ({"metadata": '{"a": "\\ud800"}'}, "metadata: has an unpaired UTF-16 surrogate"),
    ({"metadata": "[" * 100 + "]" * 100}, "metadata: is nested more than"),
    ({"doc_id": "x" * 300}, "doc_id: String should have at most 256 characters"),
    ({"title": "t" * 1001}, "title: String should have at most 1000 characters"),
    ({"doc-id": "typo"}, "doc-id: unknown field"),
])
def test_invalid_form_fields_are_422_saying_which(client, fields, says):
    before = documents_total(client)
    r = post_file(client, b"A sentence of plain text.", "a.txt", "text/plain", **fields)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "invalid_request"
    assert says in r.json()["error"]["message"], r.json()
    assert documents_total(client) == before


def test_a_form_without_a_file_is_422_naming_it(client):
    r = client.post("/v1/documents", data={"doc_id": "x"}, files={"other": ("a.txt", b"Text.", "text/plain")})
    assert r.status_code == 422
    message = r.json()["error"]["message"]
    assert message.startswith("file:") or "file: " in message, message
    r = client.post("/v1/documents", files={"file": (None, "just a string")})  # a field, not a file
    assert r.status_code == 422 and "file" in r.json()["error"]["message"], r.text


def _settings_for(limits: Limits) -> dict[str, int]:
    defaults = Limits()
    changes = {}
    if limits.max_bytes != defaults.max_bytes:
        changes["max_upload_bytes"] = max(limits.max_bytes, 1024)
    if limits.max_decompressed_bytes != defaults.max_decompressed_bytes:
        changes["max_decompressed_bytes"] = limits.max_decompressed_bytes
    return changes


def test_the_bad_input_catalogue_over_http_stores_nothing(embedder, tmp_path):
    """Every entry of tests/index/extract/bad_inputs.py, uploaded, gets its status and a
    message with the catalogue's words, and the collection is unchanged."""
    groups: dict[tuple, list[BadInput]] = {}
    for bad in CATALOGUE:
        groups.setdefault(tuple(sorted(_settings_for(bad.limits).items())), []).append(bad)
    for n, (changes, entries) in enumerate(groups.items()):
        with app_with(embedder, tmp_path / str(n), **dict(changes)) as c:
            post_file(c, b"One document is here already.", "here.txt", "text/plain", doc_id="here")
            for bad in entries:
                data = bad.make()
                if bad.limits.max_bytes < 1024:  # the settings' floor: make the file as large as it must be
                    data = data * (2048 // len(data) + 1)
                r = post_file(c, data, f"{bad.name}.bin", bad.declared_type or "application/octet-stream",
                              doc_id="bad")
                assert r.status_code == bad.status, (bad.name, r.status_code, r.text)
                error = r.json()["error"]
                assert error["code"] == {413: "payload_too_large", 415: "unsupported_media_type",
                                         422: "invalid_document"}[bad.status], (bad.name, error)
                for words in bad.says:
                    assert words in error["message"], (bad.name, words, error["message"])
                listed = c.get("/v1/documents").json()
                assert [d["doc_id"] for d in listed["documents"]] == ["here"], bad.name
                assert c.get("/v1/documents/bad").status_code == 404


def test_uploads_have_their_own_size_limit_counted_as_they_stream(embedder, tmp_path):
    with app_with(embedder, tmp_path, max_upload_bytes=4096, max_body_bytes=2048, max_text_chars=5000) as c:
        # Over the JSON limit, under the upload limit: an upload takes it.
        text = ("Words of a plain text file. " * 100).encode()[:3000]
        assert post_file(c, text, "a.txt", "text/plain", doc_id="fits").status_code == 201
        # Over the upload limit, with a Content-Length.
        r = post_file(c, text * 2, "a.txt", "text/plain", doc_id="big")
        assert r.status_code == 413
        assert r.json()["error"] == {"code": "payload_too_large",
                                     "message": "the upload is more than the limit of 4,096 bytes"}
        # And without one (chunked): the bytes are counted as they come.
        boundary = "b0undary"
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n"
                f"Content-Type: text/plain\r\n\r\n").encode() + text * 2 + f"\r\n--{boundary}--\r\n".encode()
        r = c.post("/v1/documents", content=(body[i:i + 1000] for i in range(0, len(body), 1000)),
                   headers={"content-type": f"multipart/form-data; boundary={boundary}"})
        assert "content-length" not in r.request.headers
        assert r.status_code == 413 and "limit of 4,096 bytes" in r.json()["error"]["message"], r.text
        assert [d["doc_id"] for d in c.get("/v1/documents").json()["documents"]] == ["fits"]
        # The same body under the limit is stored, chunked too.
        small = body.replace(text * 2, text[:1500])
        r = c.post("/v1/documents", content=(small[i:i + 700] for i in range(0, len(small), 700)),
                   headers={"content-type": f"multipart/form-data; boundary={boundary}"})
        assert r.status_code == 201, r.text


def test_multipart_anywhere_else_is_415_and_json_posts_are_unchanged(client):
    r = client.post("/v1/ask", files={"file": ("q.txt", b"How many troops?", "text/plain")})
    assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_media_type"
    assert "multipart/form-data" in r.json()["error"]["message"]
    # A file sent as the raw body is refused with a hint at the form.
    r = client.post("/v1/documents", content=_pdf(), headers={"content-type": "application/pdf"})
    assert r.status_code == 415 and "multipart/form-data" in r.json()["error"]["message"]
    # JSON: as before, and no source.
    r = client.post("/v1/documents", json={"doc_id": "j", "text": "Plain JSON text. Two sentences."})
    assert r.status_code == 201
    assert r.json() == {"collection": "default", "doc_id": "j", "doc_version": r.json()["doc_version"],
                        "sentence_count": 2, "created": True, "source": None}
    assert client.post("/v1/documents", json={"doc_id": "j", "text": "Plain JSON text. Two sentences."}).json()[
        "created"] is False
    assert client.get("/v1/documents/j").json()["source"] is None
    r = client.get("/v1/documents/j/original")
    assert r.status_code == 404 and "sent as text" in r.json()["error"]["message"]
    r = client.post("/v1/documents", json={"text": "x", "file": "y"})
    assert r.status_code == 422 and "file" in r.json()["error"]["message"]


def test_original_of_unknown_documents_and_versions_is_404(client):
    r = client.get("/v1/documents/nope/original")
    assert r.status_code == 404 and "'nope' not found" in r.json()["error"]["message"]
    post_file(client, b"Some text in a file.", "t.txt", "text/plain", doc_id="t")
    r = client.get("/v1/documents/t/original", params={"version": "0000000000000000"})
    assert r.status_code == 404 and "no version" in r.json()["error"]["message"]


def test_ids_with_slashes_and_ids_ending_in_original(client):
    """A literal /original ends the path of the original route; the same id with its slashes
    quoted (%2F) is the document of that whole id."""
    post_file(client, b"The outer file has this text.", "outer.txt", "text/plain", doc_id="a/b")
    post_file(client, b"The inner file has other text.", "inner.txt", "text/plain", doc_id="a/b/original")
    assert client.get("/v1/documents/a/b").json()["text"] == "The outer file has this text."
    assert client.get("/v1/documents/a/b/original").content == b"The outer file has this text."
    inner = client.get("/v1/documents/a%2Fb%2Foriginal").json()
    assert inner["doc_id"] == "a/b/original" and inner["text"] == "The inner file has other text."
    assert client.get("/v1/documents/a%2Fb%2Foriginal/original").content == b"The inner file has other text."
    assert client.get(inner["source"]["original_url"]).content == b"The inner file has other text."
    # A document named "original" and ids with characters a path must quote.
    post_file(client, b"Named original.", "o.txt", "text/plain", doc_id="original")
    assert client.get("/v1/documents/original").json()["doc_id"] == "original"
    odd = "odd id?#&%/é"
    written = post_file(client, b"An odd identifier.", "odd.txt", "text/plain", doc_id=odd).json()
    assert client.get(written["source"]["original_url"]).content == b"An odd identifier."
    assert client.get(f"/v1/documents/{quote(odd, safe='')}").json()["doc_id"] == odd
    # Deleting goes by the whole path: the original route is GET only.
    assert client.delete("/v1/documents/a%2Fb%2Foriginal").status_code == 204
    assert client.get("/v1/documents/a/b").status_code == 200


@pytest.mark.parametrize("filename", ['report "final".txt', "résumé 2024.txt", "a;b\r\nX-Evil: 1.txt", "../../x.txt"])
def test_any_file_name_is_safe_in_the_download_header(client, filename):
    written = post_file(client, b"Text with a strange name.", filename, "text/plain", doc_id="named").json()
    r = client.get(written["source"]["original_url"])
    assert r.status_code == 200 and "x-evil" not in r.headers
    disposition = r.headers["content-disposition"]
    assert disposition.isascii() and "\r" not in disposition and "\n" not in disposition
    stored = client.get("/v1/documents/named").json()["source"]["filename"]
    assert unquote(disposition.split("filename*=UTF-8''", 1)[1]) == stored


def test_extraction_limits_come_from_the_settings_of_their_names():
    settings = Settings(max_upload_bytes=10_000, max_decompressed_bytes=20_000, max_pdf_pages=7,
                        max_text_chars=300, _env_file=None)
    assert extraction_limits(settings) == Limits(max_bytes=10_000, max_decompressed_bytes=20_000, max_pages=7,
                                                 max_text_chars=300)
    # By default: the extractors' own defaults, and as much text as a JSON body may carry.
    default = Settings(_env_file=None)
    assert extraction_limits(default) == Limits(max_text_chars=default.max_body_bytes)
    assert extraction_limits(default.model_copy(update={"max_body_bytes": 9_000})).max_text_chars == 9_000


def test_upload_limits_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("CITEQA_MAX_UPLOAD_BYTES", "123456")
    monkeypatch.setenv("CITEQA_MAX_PDF_PAGES", "12")
    settings = Settings(_env_file=None)
    assert (settings.max_upload_bytes, settings.max_pdf_pages) == (123_456, 12)


def test_the_schema_documents_both_bodies(client):
    operation = client.get("/openapi.json").json()["paths"]["/v1/documents"]["post"]
    content = operation["requestBody"]["content"]
    assert set(content) == {"application/json", "multipart/form-data"}
    form = content["multipart/form-data"]["schema"]
    assert form["required"] == ["file"] and set(form["properties"]) == {"file", "doc_id", "title", "metadata",
                                                                             "collection"}
    assert "/original" in str(client.get("/openapi.json").json()["paths"])
