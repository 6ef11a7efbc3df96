"""The ``citeqa`` command: the tools are listed without being imported and load when they
run; and end to end, the real console script (ingest, ask), in process on a data directory
and over HTTP against a running ``citeqa serve``; and the HTTP client side it uses (api/client.py)."""

from __future__ import annotations

import importlib
import json
import re
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from typer.testing import CliRunner

from citeqa.api import cli
from citeqa.api.client import ApiError, document_path, document_payload, error_message, post_json, upload_file
from citeqa.index.ingest import DocumentInput
from tests.support.cli import assert_no_traceback, cli_env, flat, run_cli, unboxed
from tests.support.servers import Server

# -- the tools: listed by name, loaded when they run ----------------------------------------------


@pytest.fixture
def imported(monkeypatch) -> list[str]:
    """The modules the CLI imports to load a tool, in order (they are imported for real)."""
    names: list[str] = []
    real = importlib.import_module

    def spy(name: str, package: str | None = None):
        names.append(name)
        return real(name, package)

    # The CLI's own importlib only: modules it loads may import lazily through theirs.
    monkeypatch.setattr(cli, "importlib", SimpleNamespace(import_module=spy))
    return names


def test_help_lists_every_tool_without_loading_one(imported):
    result = CliRunner().invoke(cli.app, ["--help"])
    assert result.exit_code == 0, result.output
    listed = unboxed(result.output)
    for name, tool in cli.TOOLS.items():
        assert re.search(rf"\b{re.escape(name)}\b", listed), name
        assert flat(tool.help) in listed, name
    assert imported == []


@pytest.mark.parametrize(("args", "module", "expected"), [
    (["bench", "--help"], "citeqa.bench.service", "Measure ingest rate, latency"),
    (["bench-scale", "--help"], "citeqa.bench.scale", "Grow a store to 10k..1M sentences"),
    (["eval", "--help"], "citeqa.evaluation.command", "Score citation accuracy"),
    (["stress", "--help"], "citeqa.bench.stress", "SIGKILL during ingest, and concurrent load"),
    (["stress", "crash", "--help"], "citeqa.bench.stress", "every acknowledged document must survive"),
    (["stress", "load", "--help"], "citeqa.bench.stress", "Concurrent clients for a fixed time"),
])
def test_a_tool_loads_when_it_runs(imported, args, module, expected):
    result = CliRunner().invoke(cli.app, args)
    assert result.exit_code == 0, result.output
    assert imported == [module]
    # The tool's own help: its usage line and description (long option names may be cut short
    # on a narrow terminal, so they are not what is checked).
    shown = flat(result.output)
    assert f"{' '.join(args[:-1])} [OPTIONS]" in shown and expected in shown, result.output


def test_each_tool_is_listed_with_its_own_help():
    for name, tool in cli.TOOLS.items():
        assert tool.load().help == tool.help, name


def test_unknown_commands_get_the_usual_error(imported):
    result = CliRunner().invoke(cli.app, ["nope"])
    assert result.exit_code == 2 and "No such command 'nope'" in unboxed(result.output), result.output
    result = CliRunner().invoke(cli.app, ["bench-scal"])  # tools are suggested like any command
    assert result.exit_code == 2 and "Did you mean 'bench-scale'" in unboxed(result.output), result.output
    assert imported == []


@pytest.mark.slow
def test_help_imports_no_tool_module(tmp_path):
    """What `citeqa --help` imports, as Python reports it (a fresh interpreter)."""
    code = "import sys; sys.argv = ['citeqa', '--help']; from citeqa.api.cli import main; main()"
    run = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True,
                         encoding="utf-8", env=cli_env(tmp_path), cwd=tmp_path, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "citeqa.api.cli" in run.stderr  # importtime did report
    modules = [line.rsplit("|", 1)[1].strip() for line in run.stderr.splitlines() if line.startswith("import time:")]
    assert not [m for m in modules if m.startswith(("citeqa.bench", "citeqa.evaluation"))]
    # Nor what only the commands need: the model, the stores, the web app.
    assert not {"torch", "faiss", "numpy", "fastapi"} & set(modules)


# -- the HTTP client side (api/client.py) -----------------------------------------------------------


def test_the_ingest_payload_is_the_document():
    item = DocumentInput(text="One. Two.", doc_id="d/1", title="T", metadata={"k": [1]})
    assert document_payload(item) == {"doc_id": "d/1", "title": "T", "text": "One. Two.", "metadata": {"k": [1]}}
    assert document_path("d/1 ?") == "/v1/documents/d%2F1%20%3F"


@pytest.mark.parametrize(("response", "message"), [
    (httpx.Response(422, json={"error": {"code": "invalid", "message": "question: too long"}}), "question: too long"),
    (httpx.Response(502, text="<html>Bad Gateway</html>"), "<html>Bad Gateway</html>"),
    (httpx.Response(500, json={"detail": "x"}), '{"detail":"x"}'),
    (httpx.Response(500, json={"error": "flat"}), '{"error":"flat"}'),
    (httpx.Response(503, text="x" * 500), "x" * 200),
])
def test_error_messages_are_read_from_any_error_body(response, message):
    assert error_message(response) == message


def test_post_json_raises_the_status_and_message():
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/ask":
            return httpx.Response(200, json={"answer": "yes"})
        return httpx.Response(401, json={"error": {"code": "unauthorized", "message": "needs a key"}})

    with httpx.Client(base_url="http://test", transport=httpx.MockTransport(handler)) as client:
        assert post_json(client, "/v1/ask", {"question": "q"}) == {"answer": "yes"}
        with pytest.raises(ApiError, match="POST /v1/documents -> 401: needs a key") as failed:
            post_json(client, "/v1/documents", {"text": "t"})
    assert (failed.value.status, failed.value.message) == (401, "needs a key")


def test_upload_file_sends_the_file_and_its_fields_as_multipart():
    seen: dict = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen["type"] = request.headers["content-type"]
        seen["body"] = request.read()
        if b"bad.pdf" in seen["body"]:
            return httpx.Response(422, json={"error": {"code": "invalid_document", "message": "the PDF is corrupt"}})
        return httpx.Response(201, json={"doc_id": "report", "created": True, "sentence_count": 3})

    with httpx.Client(base_url="http://test", transport=httpx.MockTransport(handler)) as client:
        body = upload_file(client, b"%PDF-1.7 bytes", "report.pdf", doc_id="a/report", metadata={"k": "ü"})
        assert body["created"] is True
        assert seen["type"].startswith("multipart/form-data; boundary=")
        sent = seen["body"]
        assert b'name="file"; filename="report.pdf"' in sent and b"%PDF-1.7 bytes" in sent
        assert b'name="doc_id"\r\n\r\na/report\r\n' in sent
        assert b'name="metadata"\r\n\r\n{"k": "\\u00fc"}\r\n' in sent
        assert b'name="title"' not in sent  # not given: the server takes the file's own
        with pytest.raises(ApiError, match="POST /v1/documents -> 422: the PDF is corrupt"):
            upload_file(client, b"x", "bad.pdf")


def _remote_run(tmp_path: Path, answer) -> tuple[object, list[tuple[Path, str]]]:
    from rich.progress import Progress

    from citeqa.api.ingest_files import ingest_remotely
    from citeqa.index.file_input import input_files

    (tmp_path / "a.txt").write_text("First file. Two sentences.", encoding="utf-8")
    (tmp_path / "b.html").write_text("<html><body><p>Not read here.</p></body></html>", encoding="utf-8")
    (tmp_path / "c.txt").write_text("Third file.", encoding="utf-8")
    reported: list[tuple[Path, str]] = []
    with httpx.Client(base_url="http://test", transport=httpx.MockTransport(answer)) as client, \
            Progress(disable=True) as progress:
        tally = ingest_remotely(input_files([tmp_path]).files, client, progress,
                                lambda path, problem: reported.append((path, problem)))
    return tally, reported


def batch_answer(request: httpx.Request, **status: str) -> httpx.Response:
    """What POST /v1/documents:batch answers: each document created, unless ``status`` maps
    its doc_id to an error message (422)."""
    documents = json.loads(request.read())["documents"]
    return httpx.Response(200, json={"documents": [
        {"index": i, "status": "error", "http_status": 422, "doc_id": d["doc_id"],
         "error": {"code": "invalid_document", "message": status[d["doc_id"]]}} if d["doc_id"] in status else
        {"index": i, "status": "created", "http_status": 201, "doc_id": d["doc_id"], "sentence_count": 1}
        for i, d in enumerate(documents)]})


def test_ingest_over_url_fails_a_refused_file_and_goes_on(tmp_path):
    def answer(request: httpx.Request) -> httpx.Response:
        if request.headers["content-type"].startswith("multipart/"):
            return httpx.Response(415, json={"error": {"code": "unsupported", "message": "unsupported media type"}})
        return batch_answer(request)

    tally, reported = _remote_run(tmp_path, answer)
    assert reported == [(tmp_path / "b.html", "415 unsupported media type")]
    assert tally.summary() == "2 stored, 0 unchanged, 2 sentences, 1 failed" and tally.stopped is None


@pytest.mark.parametrize("status", [401, 429, 503])
def test_ingest_over_url_stops_when_every_file_would_fail(tmp_path, status):
    calls = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(status, json={"error": {"code": "x", "message": "no entry"}})

    tally, reported = _remote_run(tmp_path, answer)
    assert len(calls) == 1 and reported == []
    assert tally.stopped == f"{status} no entry" and tally.summary() == "0 stored, 0 unchanged, 0 sentences, 0 failed"


@pytest.mark.parametrize(("citation", "shown"), [
    ({"page": None, "end_page": None}, ""), ({}, ""), ({"page": 4, "end_page": None}, "  page 4"),
    ({"page": 4, "end_page": 4}, "  page 4"), ({"page": 4, "end_page": 6}, "  pages 4–6"),
])
def test_ask_shows_the_pages_of_a_citation(citation, shown):
    assert cli._pages(citation) == shown


# -- end to end: the console script on a data directory, and against a server ----------------------

slow = pytest.mark.slow


# Non-ASCII before the answers (an emoji is 1 code point, 2 UTF-16 units, 4 UTF-8 bytes),
# so offsets in any other unit would not match.
LIGHTHOUSE_TXT = (
    "The Bell Rock Lighthouse\n\n"
    "The Bell Rock Lighthouse — « Inchcape » to sailors 🌊 — stands off the coast of Angus, Scotland. "
    "Robert Stevenson built the tower between 1807 and 1810. The tower is 35 metres tall and is the "
    "oldest surviving sea-washed lighthouse in the world. Its light can be seen from 35 nautical miles away.\n"
)
JSONL_DOCS = [
    {"doc_id": "volcano", "title": "Mount Tambora", "metadata": {"topic": "geology"},
     "text": "Mount Tambora 🌋 is a stratovolcano on Sumbawa, Indonesia. Its eruption in April 1815 killed "
             "at least 71,000 people. The ash cloud caused the Year Without a Summer in 1816."},
    {"doc_id": "bridge", "title": "Forth Bridge",
     "text": "The Forth Bridge — “the Forth Rail Bridge” — is a cantilever railway bridge in Scotland. "
             "It opened on 4 March 1890. The bridge spans 2,467 metres across the Firth of Forth."},
]
TAMBORA_QUESTION = "How many people did the eruption of Mount Tambora kill?"
TAMBORA_QUOTE = "Its eruption in April 1815 killed at least 71,000 people."
LIGHT_QUESTION = "How far away can the Bell Rock light be seen?"
LIGHT_QUOTE = "Its light can be seen from 35 nautical miles away."


@dataclass
class Workspace:
    root: Path
    data: Path
    seeds: Path
    texts: dict[str, str]
    ingest: subprocess.CompletedProcess


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Workspace:
    root = tmp_path_factory.mktemp("cli")
    seeds = root / "no-seeds"
    seeds.mkdir()
    (root / "lighthouse.txt").write_text(LIGHTHOUSE_TXT, encoding="utf-8")
    (root / "more.jsonl").write_text("\n".join(json.dumps(d, ensure_ascii=False) for d in JSONL_DOCS) + "\n\n",
                                     encoding="utf-8")
    data = root / "data"
    result = run_cli(root, seeds, "ingest", root / "lighthouse.txt", root / "more.jsonl", "--data-dir", data)
    texts = {"lighthouse": LIGHTHOUSE_TXT, **{d["doc_id"]: d["text"] for d in JSONL_DOCS}}
    return Workspace(root=root, data=data, seeds=seeds, texts=texts, ingest=result)


@pytest.fixture(scope="module")
def in_process_answer(ws) -> dict:
    result = run_cli(ws.root, ws.seeds, "ask", TAMBORA_QUESTION, "--json", "--data-dir", ws.data)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


@slow
def test_ingest_prints_a_summary(ws):
    from citeqa.index.sentences import split_sentences

    assert ws.ingest.returncode == 0, ws.ingest.stdout + ws.ingest.stderr
    assert_no_traceback(ws.ingest)
    expected = sum(len(split_sentences(t)) for t in ws.texts.values())
    assert expected >= 9
    assert f"3 stored, 0 unchanged, {expected} sentences" in flat(ws.ingest.stdout)


@slow
def test_ask_json_quotes_the_ingested_text_at_its_offsets(ws, in_process_answer):
    body = in_process_answer
    assert body["status"] == "answered"
    assert body["offset_unit"] == "codepoint"
    assert body["citations"], body
    assert TAMBORA_QUOTE in [c["quote"] for c in body["citations"]]
    for c in body["citations"]:
        text = ws.texts[c["doc_id"]]
        assert text[c["start"]:c["end"]] == c["quote"]
        assert c["sentence_id"].startswith(f"{c['doc_id']}:")
        assert f"[{c['marker']}]" in body["answer"]
        assert 0 <= c["answer_start"] < c["answer_end"] <= len(body["answer"])
    cited = next(c for c in body["citations"] if c["quote"] == TAMBORA_QUOTE)
    # Code points: the emoji before the quote counts once.
    assert (cited["doc_id"], cited["start"]) == ("volcano", JSONL_DOCS[0]["text"].index(TAMBORA_QUOTE))


@slow
def test_ask_prints_the_answer_and_the_quote(ws):
    result = run_cli(ws.root, ws.seeds, "ask", LIGHT_QUESTION, "--data-dir", ws.data)
    assert result.returncode == 0, result.stdout + result.stderr
    assert_no_traceback(result)
    out = flat(result.stdout)
    assert "answered" in out
    assert LIGHT_QUOTE + " [1]" in out  # the answer line
    start = LIGHTHOUSE_TXT.index(LIGHT_QUOTE)
    assert "[1] lighthouse@" in out and f"chars {start}–{start + len(LIGHT_QUOTE)}" in out, out
    # The quote is shown inside its context from the stored text.
    assert flat(LIGHTHOUSE_TXT[start - 40:start] + LIGHT_QUOTE) in out, out


@slow
@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (['{"doc_id": "ok", "text": "A fine line."}', "this is not json"], ["bad.jsonl:2"]),
        (['{"text": 5}'], ["bad.jsonl:1", "text"]),
        (['{"title": "no text here"}'], ["bad.jsonl:1", "text"]),
        (['{"text": "Fine.", "metadata": ["not", "an", "object"]}'], ["bad.jsonl:1", "metadata"]),
        (['{"text": "   "}'], ["empty"]),
    ],
    ids=["not-json", "text-not-a-string", "no-text", "metadata-not-an-object", "blank-text"],
)
def test_ingest_rejects_bad_jsonl_clearly(tmp_path, lines, expected):
    seeds = tmp_path / "no-seeds"
    seeds.mkdir()
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    data = tmp_path / "data"
    result = run_cli(tmp_path, seeds, "ingest", bad, "--data-dir", data)
    assert result.returncode != 0
    assert_no_traceback(result)
    message = flat(result.stdout + result.stderr)
    for part in expected:
        assert part in message, message
    # Nothing from the file was stored, not even its good lines.
    db = data / "citeqa.sqlite3"
    if db.exists():
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT count(*) FROM versions").fetchone()[0] == 0


# -- against a running server -------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(ws, in_process_answer):
    # Started after the in-process answer: both then see exactly the ingested corpus.
    srv = Server(ws.data, ws.root, env={"CITEQA_SEEDS_DIR": str(ws.seeds)})
    try:
        yield srv.start()
    finally:
        srv.kill_quietly()


def _without_timings(body: dict) -> dict:
    return {k: v for k, v in body.items() if k != "timings_ms"}


@slow
def test_ask_over_url_gives_the_same_answer_as_in_process(ws, server, in_process_answer):
    result = run_cli(ws.root, ws.seeds, "ask", TAMBORA_QUESTION, "--json", "--url", server.url)
    assert result.returncode == 0, result.stdout + result.stderr
    over_http = json.loads(result.stdout)
    assert _strip_scores(over_http) == _strip_scores(in_process_answer)
    assert _scores(over_http) == pytest.approx(_scores(in_process_answer), abs=1e-5)
    assert TAMBORA_QUOTE in [c["quote"] for c in over_http["citations"]]


def _strip_scores(body: dict) -> dict:
    body = _without_timings(body)
    return {**body, "citations": [{k: v for k, v in c.items() if k not in {"score", "support"}}
                                  for c in body["citations"]]}


def _scores(body: dict) -> list[float]:
    return [x for c in body["citations"] for x in (c["score"], c["support"])]


@slow
def test_ask_over_url_prints_the_quote(ws, server):
    result = run_cli(ws.root, ws.seeds, "ask", LIGHT_QUESTION, "--url", server.url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert_no_traceback(result)
    out = flat(result.stdout)
    assert LIGHT_QUOTE + " [1]" in out and "lighthouse@" in out


@slow
def test_ask_over_url_reports_a_server_error_without_a_traceback(ws, server):
    result = run_cli(ws.root, ws.seeds, "ask", "x" * 5000, "--url", server.url)
    assert result.returncode != 0
    assert_no_traceback(result)
    assert "422" in result.stdout and "longer than" in flat(result.stdout)


@slow
def test_ingest_over_url_stores_through_the_server(ws, server, tmp_path):
    text = "The Skerry ferry sails at dawn. It carries twelve cars. The crossing takes forty minutes.\n"
    path = tmp_path / "ferry.txt"
    path.write_text(text, encoding="utf-8")
    first = run_cli(ws.root, ws.seeds, "ingest", path, "--url", server.url)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "1 stored, 0 unchanged, 3 sentences" in flat(first.stdout)
    again = run_cli(ws.root, ws.seeds, "ingest", path, "--url", server.url)
    assert "0 stored, 1 unchanged, 3 sentences" in flat(again.stdout)
    doc = httpx.get(f"{server.url}/v1/documents/ferry", timeout=30)
    assert doc.status_code == 200 and doc.json()["text"] == text
