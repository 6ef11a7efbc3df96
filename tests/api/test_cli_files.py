"""``citeqa ingest`` of a folder of real formats (an HTML article, a multi-page PDF, a
Markdown note, a DOCX and a damaged PDF), then ``citeqa ask`` over them: in process on a
data directory, and through a running server (the files uploaded as multipart)."""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from citeqa.index.extract import page_range
from tests.index.extract.builders import Page, docx_document, fpdf_document, news_page
from tests.support.cli import assert_no_traceback, flat, run_cli
from tests.support.servers import Server

pytestmark = pytest.mark.slow

# Filler that is about nothing the questions ask, so that the asked sentence is the answer.
FILLER = (
    "The committee met twice during the autumn term. Minutes of each meeting were circulated to members.",
    "Several members asked for the agenda to be shared earlier. The chair agreed to send it a week ahead.",
    "Budget lines for printing and postage were merged into one. Travel costs stayed within the plan.",
)
OBSERVATORY = "The observatory on Mount Halden records 214 clear nights each year."
PDF_PAGES = [
    Page("Annual report of the science society", FILLER[:2]),
    Page("Observing", (FILLER[2], f"{OBSERVATORY} Its dome was rebuilt after the storm of 1998.")),
    Page("Accounts", FILLER[:1]),
]
MARKDOWN = (
    "# Harbour notes\n\n"
    "The **Kestrel ferry** leaves [Port Ellen](https://example.org/port-ellen) at *seven o'clock* every morning.\n\n"
    "## Fares\n\n- A single fare costs `four pounds`.\n- Bicycles travel free.\n"
)
FERRY_QUOTE = "The Kestrel ferry leaves Port Ellen at seven o'clock every morning."
CLOCK = "The museum's oldest clock was made in Leiden in 1672."
DOCX_BLOCKS = [("h1", "Collections"), ("p", f"{CLOCK} It still strikes the hours."),
               ("p", "The reading room opens on weekdays only.")]
STEEL = "Engineers said the steel span will carry four lanes of traffic and a protected cycle path."

# (question, doc_id, the sentence that answers it)
QUESTIONS = [
    ("How many clear nights does the Mount Halden observatory record each year?", "report", OBSERVATORY),
    ("When does the Kestrel ferry leave Port Ellen?", "harbour", FERRY_QUOTE),
    ("Where was the museum's oldest clock made?", "sub/museum", CLOCK),
    ("How many lanes of traffic will the steel span carry?", "bridge", STEEL),
]


def _folder(root: Path) -> Path:
    docs = root / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "bridge.html").write_text(news_page(), encoding="utf-8")
    pdf = fpdf_document(PDF_PAGES, title="Annual report")
    (docs / "report.pdf").write_bytes(pdf)
    (docs / "harbour.md").write_text(MARKDOWN, encoding="utf-8")
    (docs / "sub" / "museum.docx").write_bytes(docx_document("Museum guide", DOCX_BLOCKS))
    (docs / "broken.pdf").write_bytes(pdf[: len(pdf) // 2])  # truncated: no xref, no %%EOF
    return docs


@dataclass
class Workspace:
    root: Path
    seeds: Path
    docs: Path
    data: Path
    ingest: subprocess.CompletedProcess


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Workspace:
    root = tmp_path_factory.mktemp("cli-files")
    seeds = root / "no-seeds"
    seeds.mkdir()
    docs = _folder(root)
    data = root / "data"
    return Workspace(root, seeds, docs, data, run_cli(root, seeds, "ingest", docs, "--data-dir", data))


def _stored(data: Path) -> dict:
    """The current version of each document, read from the store itself."""
    from citeqa.index.embedded_store import EmbeddedStore

    store = EmbeddedStore(data, 384)
    try:
        return {doc_id: store.document(doc_id) for _, doc_id, _ in QUESTIONS}
    finally:
        store.close()


def _assert_broken_pdf_reported(result: subprocess.CompletedProcess, sentences: int | None = None) -> None:
    assert_no_traceback(result)
    out = flat(result.stdout + result.stderr)
    assert result.returncode == 1, out
    # Named, with the status and what is wrong with it; nothing else failed.
    assert re.search(r"failed: \S*broken\.pdf: 422 .*(truncated|corrupt|damaged)", out), out
    assert out.count("failed:") == 1, out
    summary = re.search(r"(\d+) stored, (\d+) unchanged, (\d+) sentences, (\d+) failed", out)
    assert summary and summary.group(1, 2, 4) == ("4", "0", "1"), out
    if sentences is not None:
        assert int(summary.group(3)) == sentences, out


def test_a_broken_file_is_named_and_the_others_are_stored(ws):
    docs = _stored(ws.data)
    assert all(doc is not None for doc in docs.values()), docs
    from citeqa.index.embedded_store import EmbeddedStore

    store = EmbeddedStore(ws.data, 384)
    try:
        assert store.document("broken") is None
        sentences = sum(len(store.sentences(d.doc_id, d.version)) for d in docs.values())
    finally:
        store.close()
    _assert_broken_pdf_reported(ws.ingest, sentences)
    # Each version records the file it came from.
    kinds = {doc_id: (doc.source.media_type, doc.source.filename) for doc_id, doc in docs.items()}
    assert kinds == {"report": ("application/pdf", "report.pdf"), "harbour": ("text/markdown", "harbour.md"),
                     "sub/museum": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                                    "museum.docx"),
                     "bridge": ("text/html", "bridge.html")}
    # The article without its page's boilerplate, the note without its markup.
    assert "Subscribe now" not in docs["bridge"].text and STEEL in docs["bridge"].text
    assert FERRY_QUOTE in docs["harbour"].text and not {"#", "*", "`", "]("} & set(docs["harbour"].text)


@pytest.fixture(scope="module")
def answers(ws) -> dict[str, dict]:
    out = {}
    for question, doc_id, _ in QUESTIONS:
        result = run_cli(ws.root, ws.seeds, "ask", question, "--json", "--data-dir", ws.data)
        assert result.returncode == 0, result.stdout + result.stderr
        out[doc_id] = json.loads(result.stdout)
    return out


@pytest.mark.parametrize(("question", "doc_id", "sentence"), QUESTIONS, ids=[q[1] for q in QUESTIONS])
def test_asked_over_the_files_the_quotes_are_exact(ws, answers, question, doc_id, sentence):
    body = answers[doc_id]
    assert body["status"] == "answered", body
    docs = {d.doc_id: d for d in _stored(ws.data).values()}
    for c in body["citations"]:
        doc = docs.get(c["doc_id"])
        assert doc is not None and doc.version == c["doc_version"], c
        assert doc.text[c["start"]:c["end"]] == c["quote"]
    first = body["citations"][0]
    assert (first["doc_id"], first["quote"]) == (doc_id, sentence), body


def test_the_pdf_quote_is_on_the_page_the_builder_put_it(ws, answers):
    doc = _stored(ws.data)["report"]
    cited = answers["report"]["citations"][0]
    assert cited["quote"] == OBSERVATORY
    assert doc.source is not None and len(doc.source.pages) == 3
    assert page_range(doc.source.pages, cited["start"], cited["end"]) == (2, 2)
    assert (cited.get("page"), cited.get("end_page")) == (2, None), cited


def test_the_markdown_quote_carries_no_markup(answers):
    quote = answers["harbour"]["citations"][0]["quote"]
    assert quote == FERRY_QUOTE and not {"#", "*", "[", "]", "("} & set(quote)


def test_ask_prints_the_page_of_a_pdf_quote(ws):
    result = run_cli(ws.root, ws.seeds, "ask", QUESTIONS[0][0], "--data-dir", ws.data)
    assert result.returncode == 0, result.stdout + result.stderr
    assert_no_traceback(result)
    out = flat(result.stdout)
    start = _stored(ws.data)["report"].text.index(OBSERVATORY)
    assert "[1] report@" in out and f"chars {start}–{start + len(OBSERVATORY)} page 2" in out, out


def test_ask_prints_the_link_of_a_web_page_quote(ws, answers):
    cited = answers["bridge"]["citations"][0]
    canonical = "https://gazette.example.org/news/2024/03/council-approves-bridge"  # the page's rel=canonical
    assert cited["link"].startswith(canonical + "#:~:text="), cited
    result = run_cli(ws.root, ws.seeds, "ask", QUESTIONS[3][0], "--data-dir", ws.data)
    assert result.returncode == 0, result.stdout + result.stderr
    assert cited["link"] in result.stdout, result.stdout


def test_ingest_again_changes_nothing(ws, tmp_path):
    again = run_cli(ws.root, ws.seeds, "ingest", ws.docs, "--data-dir", ws.data)
    assert_no_traceback(again)
    assert again.returncode == 1
    assert "0 stored, 4 unchanged" in flat(again.stdout), again.stdout


# -- through a running server: the files are uploaded (multipart) ---------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory, ws):
    root = tmp_path_factory.mktemp("cli-files-server")
    srv = Server(root / "data", root, env={"CITEQA_SEEDS_DIR": str(ws.seeds)})
    try:
        yield srv.start()
    finally:
        srv.kill_quietly()


def test_ingest_over_url_uploads_each_file(ws, server):
    result = run_cli(ws.root, ws.seeds, "ingest", ws.docs, "--url", server.url)
    _assert_broken_pdf_reported(result)
    local = _stored(ws.data)
    for _, doc_id, _ in QUESTIONS:
        response = httpx.get(f"{server.url}/v1/documents/{doc_id}", timeout=30)
        assert response.status_code == 200, response.text
        body = response.json()
        # The server extracted the same text, and keeps the original bytes.
        assert body["text"] == local[doc_id].text
        assert body["source"]["filename"] == local[doc_id].source.filename
        assert body["metadata"]["source_file"] == local[doc_id].source.filename
    original = httpx.get(f"{server.url}/v1/documents/report/original", timeout=30)
    assert original.status_code == 200 and original.content == (ws.docs / "report.pdf").read_bytes()
    assert httpx.get(f"{server.url}/v1/documents/broken", timeout=30).status_code == 404
    answer = run_cli(ws.root, ws.seeds, "ask", QUESTIONS[0][0], "--url", server.url)
    assert answer.returncode == 0, answer.stdout + answer.stderr
    assert "page 2" in flat(answer.stdout), answer.stdout


def test_ingest_over_url_stops_when_the_server_is_gone(ws, tmp_path):
    result = run_cli(ws.root, ws.seeds, "ingest", ws.docs, "--url", "http://127.0.0.1:9")
    assert_no_traceback(result)
    assert result.returncode == 1
    out = flat(result.stdout)
    assert "stopped: cannot reach the server" in out and "0 stored" in out, out
