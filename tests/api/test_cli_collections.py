"""``citeqa`` and collections: ``ingest --collection`` (in process, and over HTTP as the JSON
body's or the upload form's ``collection`` field), ``ask --collection/--filter``,
``collections list|create|delete`` and ``keys create --collection``.

The same doc_id is ingested into two collections with different texts: asked in one, the
answer quotes that collection's text only, and the other collection's document is never
cited, whichever of the two is asked."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import httpx
import pytest
from typer.testing import CliRunner, Result

from citeqa.api import cli
from citeqa.api.client import document_payload, document_text
from citeqa.index.ingest import DocumentInput
from tests.support.cli import assert_no_traceback, flat, run_cli, unboxed

LIGHTS_TEXT = ("The Bell Rock Lighthouse stands off the coast of Angus, Scotland. "
               "Robert Stevenson built the tower between 1807 and 1810. "
               "Its light can be seen from 35 nautical miles away.\n")
FERRIES_TEXT = ("The Kestrel ferry leaves Port Ellen at seven o'clock every morning. "
                "A single fare costs four pounds. Bicycles travel free on every crossing.\n")
LIGHT_QUESTION = "How far away can the Bell Rock light be seen?"
LIGHT_QUOTE = "Its light can be seen from 35 nautical miles away."
FERRY_QUESTION = "When does the Kestrel ferry leave Port Ellen?"
FERRY_QUOTE = "The Kestrel ferry leaves Port Ellen at seven o'clock every morning."


# -- the client side: the collection travels in the body, the form and the query ------------------


def test_the_payload_names_a_collection_other_than_default():
    item = DocumentInput(text="One.", doc_id="d", collection="lights")
    assert document_payload(item)["collection"] == "lights"
    # default: the body a server from before collections knows, unchanged
    assert "collection" not in document_payload(DocumentInput(text="One.", doc_id="d"))


def _remote_ingest(tmp_path: Path, collection: str | None) -> list[httpx.Request]:
    from rich.progress import Progress

    from citeqa.api.ingest_files import ingest_remotely
    from citeqa.index.file_input import input_files

    (tmp_path / "a.txt").write_text("First file. Two sentences.", encoding="utf-8")
    (tmp_path / "b.md").write_text("# Notes\n\nUploaded as it is.\n", encoding="utf-8")
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        request.read()
        seen.append(request)
        if request.url.path == "/v1/documents:batch":
            count = len(json.loads(request.content)["documents"])
            return httpx.Response(200, json={"documents": [{"index": i, "status": "created", "http_status": 201,
                                                            "sentence_count": 1} for i in range(count)]})
        return httpx.Response(201, json={"created": True, "sentence_count": 1})

    with httpx.Client(base_url="http://test", transport=httpx.MockTransport(answer)) as client, \
            Progress(disable=True) as progress:
        tally = ingest_remotely(input_files([tmp_path]).files, client, progress, lambda *_: None,
                                collection=collection)
    assert tally.summary() == "2 stored, 0 unchanged, 2 sentences, 0 failed"
    return seen


def test_ingest_over_url_sends_the_collection_in_the_body_and_the_form(tmp_path):
    sent = {r.headers["content-type"].split(";")[0]: r.content for r in _remote_ingest(tmp_path, "lights")}
    assert json.loads(sent["application/json"])["collection"] == "lights"
    assert b'name="collection"\r\n\r\nlights\r\n' in sent["multipart/form-data"]


def test_ingest_over_url_without_a_collection_sends_none(tmp_path):
    """The server chooses then (``default``, or the API key's only collection), and a server
    from before collections gets the requests it always got."""
    for request in _remote_ingest(tmp_path, None):
        assert b'"collection"' not in request.content and b'name="collection"' not in request.content


def test_document_text_asks_within_the_collection():
    asked: list[httpx.URL] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request.url)
        return httpx.Response(200, json={"text": "T"})

    with httpx.Client(base_url="http://test", transport=httpx.MockTransport(answer)) as client:
        assert document_text(client, "a/b", "v1", collection="lights") == "T"
        document_text(client, "a/b", "v1")
    assert dict(asked[0].params) == {"version": "v1", "collection": "lights"}
    assert dict(asked[1].params) == {"version": "v1"}


# -- usage errors: said before anything is opened ----------------------------------------------------


@pytest.mark.parametrize("args", [
    ["ask", "Why?", "--collection", "no spaces"],
    ["ask", "Why?", "--collection", "-starts-with-a-dash"],
    ["collections", "create", "a/b"],
    ["keys", "create", "--name", "bot", "--collection", "bad name"],
])
def test_a_bad_collection_name_is_a_usage_error(tmp_path, args):
    result = CliRunner().invoke(cli.app, [*args, "--data-dir", str(tmp_path / "data")])
    assert result.exit_code == 2, result.output
    assert "collection name is 1-64 characters" in flat(result.output)
    assert not (tmp_path / "data").exists()  # refused before any store was opened


@pytest.mark.parametrize(("value", "said"), [
    ("{not json", "--filter is not JSON"),
    ('["a"]', "--filter: must be an object"),
    ('{"doc_id": ["a"]}', "unknown: doc_id"),
    ('{"doc_ids": "a"}', "filter.doc_ids must be a list"),
    ('{"metadata": {"year": {"gte": "soon"}}}', "neither a number nor an ISO-8601 date"),
    ('{"metadata": {"year": {"between": [1, 2]}}}', "unknown: between"),
])
def test_a_bad_filter_is_a_usage_error(tmp_path, value, said):
    result = CliRunner().invoke(cli.app, ["ask", "Why?", "--filter", value, "--data-dir", str(tmp_path / "data")])
    assert result.exit_code == 2, result.output
    assert said in flat(result.output)
    assert not (tmp_path / "data").exists()


def test_ingest_refuses_a_bad_collection_name(tmp_path):
    (tmp_path / "a.txt").write_text("One sentence.", encoding="utf-8")
    result = CliRunner().invoke(cli.app, ["ingest", str(tmp_path / "a.txt"), "--collection", "a b",
                                          "--data-dir", str(tmp_path / "data")])
    assert result.exit_code == 2 and "collection name" in flat(result.output), result.output
    assert not (tmp_path / "data").exists()


# -- keys limited to collections ------------------------------------------------------------------


def test_keys_create_stores_the_collections_and_list_shows_them(tmp_path, monkeypatch):
    from rich.console import Console

    from citeqa.api.keys import open_key_store
    from citeqa.api.settings import Settings

    data = str(tmp_path / "data")
    runner = CliRunner()
    limited = runner.invoke(cli.app, ["keys", "create", "--name", "harbour-bot", "--scope", "read",
                                      "--collection", "ferries", "-c", "lights", "--data-dir", data])
    assert limited.exit_code == 0, limited.output
    assert "collections ferries,lights" in flat(limited.output)
    admin = runner.invoke(cli.app, ["keys", "create", "--name", "ops", "--scope", "admin", "--scope", "read",
                                    "--data-dir", data])
    assert admin.exit_code == 0, admin.output
    assert "every collection" in flat(admin.output)

    store = open_key_store(Settings(data_dir=Path(data)))
    try:
        keys = {k.name: k for k in store.list()}
        # The printed secret is the key the limit is stored with.
        bot = store.verify(limited.output.strip().splitlines()[-1])
    finally:
        store.close()
    assert keys["harbour-bot"].collections == frozenset({"ferries", "lights"})
    assert keys["ops"].collections is None and keys["ops"].scopes == frozenset({"admin", "read"})
    assert bot is not None and bot.key_id == keys["harbour-bot"].key_id

    monkeypatch.setattr(cli, "console", Console(width=200))  # a wide terminal: no cell is cut short
    listed = runner.invoke(cli.app, ["keys", "list", "--data-dir", data])
    assert listed.exit_code == 0, listed.output
    shown = unboxed(listed.output)
    assert "harbour-bot read ferries, lights" in shown and "ops admin, read all" in shown, shown


# -- end to end: the console script on a data directory ------------------------------------------

slow = pytest.mark.slow


@dataclass
class Workspace:
    root: Path
    seeds: Path
    data: Path
    ingests: list[subprocess.CompletedProcess]

    def cli(self, *args: str | Path) -> Result:
        """``citeqa ARGS --data-dir DATA`` in this process (the model already loaded: see ``ws``)."""
        result = CliRunner().invoke(cli.app, [*map(str, args), "--data-dir", str(self.data)],
                                    env={"CITEQA_SEEDS_DIR": str(self.seeds)})
        assert result.exception is None or isinstance(result.exception, SystemExit), result.output
        return result

    def ask(self, question: str, *args: str) -> dict:
        result = self.cli("ask", question, "--json", *args)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)


@pytest.fixture(scope="module")
def ws(tmp_path_factory, embedder) -> Iterator[Workspace]:
    """``guide`` in two collections: the lighthouse text in ``lights``, the ferry text in
    ``ferries`` (and, as JSONL, a second ferry document with metadata); nothing in default.
    Ingested by the real console script; the other commands run in this process with the
    session's model (each subprocess would load it again, ~10 s a command)."""
    root = tmp_path_factory.mktemp("cli-collections")
    seeds = root / "no-seeds"
    seeds.mkdir()
    for name, text in (("lights", LIGHTS_TEXT), ("ferries", FERRIES_TEXT)):
        (root / name).mkdir()
        (root / name / "guide.txt").write_text(text, encoding="utf-8")
    (root / "timetable.jsonl").write_text(json.dumps({
        "doc_id": "winter", "title": "Winter timetable", "metadata": {"season": "winter", "year": 2024},
        "text": "In winter the Kestrel ferry leaves Port Ellen at nine o'clock. The cafe on board is closed."}) + "\n",
        encoding="utf-8")
    data = root / "data"
    ingests = [run_cli(root, seeds, "ingest", root / "lights" / "guide.txt", "--collection", "lights",
                       "--data-dir", data),
               run_cli(root, seeds, "ingest", root / "ferries" / "guide.txt", root / "timetable.jsonl",
                       "-c", "ferries", "--data-dir", data)]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("citeqa.api.services.open_embedder", lambda settings: embedder)
        yield Workspace(root, seeds, data, ingests)


@slow
def test_ingest_into_two_collections(ws):
    lights, ferries = ws.ingests
    assert lights.returncode == 0 and ferries.returncode == 0, [r.stdout + r.stderr for r in ws.ingests]
    assert "1 stored, 0 unchanged, 3 sentences, 0 failed" in flat(lights.stdout)
    assert "2 stored, 0 unchanged" in flat(ferries.stdout)
    listed = unboxed(ws.cli("collections", "list").stdout)
    for name, count in (("default", 0), ("ferries", 2), ("lights", 1)):
        assert f"{name} {count} " in listed, listed


@slow
@pytest.mark.parametrize(("collection", "question", "quote", "text"), [
    ("lights", LIGHT_QUESTION, LIGHT_QUOTE, LIGHTS_TEXT),
    ("ferries", FERRY_QUESTION, FERRY_QUOTE, FERRIES_TEXT),
])
def test_ask_in_a_collection_cites_its_own_document(ws, collection, question, quote, text):
    body = ws.ask(question, "--collection", collection)
    assert body["status"] == "answered", body
    assert quote in [c["quote"] for c in body["citations"]]
    cited = next(c for c in body["citations"] if c["quote"] == quote)
    assert cited["doc_id"] == "guide" and text[cited["start"]:cited["end"]] == quote


@slow
@pytest.mark.parametrize(("collection", "question", "foreign"), [
    ("ferries", LIGHT_QUESTION, LIGHTS_TEXT),
    ("lights", FERRY_QUESTION, FERRIES_TEXT),
    ("default", LIGHT_QUESTION, LIGHTS_TEXT),
])
def test_ask_never_cites_another_collection(ws, collection, question, foreign):
    body = ws.ask(question, "--collection", collection)
    for c in body["citations"]:
        assert c["quote"] not in foreign, c
    if collection == "default":
        assert body["status"] == "unsupported" and body["citations"] == []


@slow
def test_ask_prints_the_quote_in_context_from_its_collection(ws):
    """The same doc_id in two collections: the context shown is the asked collection's text
    (the console script, as a user runs it)."""
    result = run_cli(ws.root, ws.seeds, "ask", FERRY_QUESTION, "-c", "ferries", "--data-dir", ws.data)
    assert result.returncode == 0, result.stdout + result.stderr
    assert_no_traceback(result)
    out = flat(result.stdout)
    assert "[1] guide@" in out and flat(FERRY_QUOTE + " A single fare costs") in out, out


@slow
def test_a_filter_narrows_the_collection(ws):
    both = ws.ask("When does the Kestrel ferry leave Port Ellen in winter?", "-c", "ferries")
    assert {c["doc_id"] for c in both["citations"]} >= {"winter"}, both
    summer_only = ws.ask("When does the Kestrel ferry leave Port Ellen in winter?", "-c", "ferries",
                         "--filter", '{"doc_ids": ["guide"]}')
    assert summer_only["citations"] and {c["doc_id"] for c in summer_only["citations"]} == {"guide"}
    by_metadata = ws.ask(FERRY_QUESTION, "-c", "ferries", "--filter",
                         '{"metadata": {"season": ["winter", "spring"], "year": {"gte": 2024}}}')
    assert {c["doc_id"] for c in by_metadata["citations"]} == {"winter"}, by_metadata
    nothing = ws.ask(FERRY_QUESTION, "-c", "ferries", "--filter", '{"metadata": {"year": 1999}}')
    assert nothing["status"] == "unsupported" and nothing["citations"] == []


@slow
def test_ask_in_a_missing_collection_says_so(ws):
    result = ws.cli("ask", FERRY_QUESTION, "--collection", "nowhere")
    assert result.exit_code == 1 and "no collection named 'nowhere'" in flat(result.stdout)


@slow
def test_collections_create_and_delete(ws):
    created = ws.cli("collections", "create", "scratch")
    assert created.exit_code == 0 and "created collection scratch" in flat(created.stdout)
    again = ws.cli("collections", "create", "scratch")
    assert again.exit_code == 1 and "exists already" in flat(again.stdout)
    assert "scratch 0 " in unboxed(ws.cli("collections", "list").stdout)
    assert ws.cli("collections", "delete", "scratch").exit_code == 0
    assert "scratch" not in unboxed(ws.cli("collections", "list").stdout)
    missing = ws.cli("collections", "delete", "scratch")
    assert missing.exit_code == 1 and "no collection named 'scratch'" in flat(missing.stdout)


@slow
def test_deleting_a_collection_with_documents_needs_force(ws, tmp_path):
    doc = tmp_path / "note.txt"
    doc.write_text("The harbour master keeps the tide tables in the blue cabinet.\n", encoding="utf-8")
    assert ws.cli("ingest", doc, "-c", "doomed").exit_code == 0
    refused = ws.cli("collections", "delete", "doomed")
    assert refused.exit_code == 1 and "holds 1 document(s); --force" in flat(refused.stdout)
    assert ws.ask("Where are the tide tables kept?", "-c", "doomed")["citations"]
    forced = ws.cli("collections", "delete", "doomed", "--force")
    assert forced.exit_code == 0 and "deleted collection doomed (1 document(s))" in flat(forced.stdout)
    assert "doomed" not in unboxed(ws.cli("collections", "list").stdout)
    # The other collections are untouched.
    assert FERRY_QUOTE in [c["quote"] for c in ws.ask(FERRY_QUESTION, "-c", "ferries")["citations"]]


# -- over HTTP: ingest --url and ask --url against a running server --------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from tests.support.servers import Server

    root = tmp_path_factory.mktemp("cli-collections-server")
    (root / "no-seeds").mkdir()
    srv = Server(root / "data", root, env={"CITEQA_SEEDS_DIR": str(root / "no-seeds")})
    try:
        yield srv.start()
    finally:
        srv.kill_quietly()


@slow
def test_ingest_and_ask_over_url_in_a_collection(server, tmp_path):
    seeds = tmp_path / "no-seeds"
    seeds.mkdir()
    (tmp_path / "guide.txt").write_text(FERRIES_TEXT, encoding="utf-8")  # sent as JSON
    (tmp_path / "lights.md").write_text("# Lights\n\n" + LIGHTS_TEXT, encoding="utf-8")  # uploaded
    ingest = run_cli(tmp_path, seeds, "ingest", tmp_path / "guide.txt", tmp_path / "lights.md",
                     "--collection", "harbours", "--url", server.url)
    assert ingest.returncode == 0, ingest.stdout + ingest.stderr
    assert "2 stored, 0 unchanged" in flat(ingest.stdout)

    with server.client() as http:
        for doc_id in ("guide", "lights"):
            assert http.get(f"/v1/documents/{doc_id}", params={"collection": "harbours"}).status_code == 200
            assert http.get(f"/v1/documents/{doc_id}").status_code == 404  # not in default
        listed = {c["name"]: c["documents"] for c in http.get("/v1/collections").json()["collections"]}
    assert listed == {"default": 0, "harbours": 2}

    asked = run_cli(tmp_path, seeds, "ask", LIGHT_QUESTION, "--json", "-c", "harbours", "--url", server.url)
    assert asked.returncode == 0, asked.stdout + asked.stderr
    body = json.loads(asked.stdout)
    cited = next(c for c in body["citations"] if c["quote"] == LIGHT_QUOTE)
    assert cited["doc_id"] == "lights" and cited["collection"] == "harbours"
    shown = run_cli(tmp_path, seeds, "ask", FERRY_QUESTION, "-c", "harbours", "--filter", '{"doc_ids": ["guide"]}',
                    "--url", server.url)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    # The context is read back from the collection (GET ...?collection=harbours).
    assert flat(FERRY_QUOTE + " A single fare costs") in flat(shown.stdout), shown.stdout
    elsewhere = run_cli(tmp_path, seeds, "ask", LIGHT_QUESTION, "--json", "--url", server.url)
    assert json.loads(elsewhere.stdout)["citations"] == []
    missing = run_cli(tmp_path, seeds, "ask", LIGHT_QUESTION, "-c", "nowhere", "--url", server.url)
    assert missing.returncode == 1 and "404 collection 'nowhere' not found" in flat(missing.stdout)
