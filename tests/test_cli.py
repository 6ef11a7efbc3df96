"""End to end: the real ``citeqa`` console script (ingest, ask), in process on a data
directory and over HTTP against a running ``citeqa serve``."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.cli import assert_no_traceback, flat, run_cli
from tests.support.servers import Server

pytestmark = pytest.mark.slow


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


def test_ingest_prints_a_summary(ws):
    from citeqa.index.sentences import split_sentences

    assert ws.ingest.returncode == 0, ws.ingest.stdout + ws.ingest.stderr
    assert_no_traceback(ws.ingest)
    expected = sum(len(split_sentences(t)) for t in ws.texts.values())
    assert expected >= 9
    assert f"3 stored, 0 unchanged, {expected} sentences" in flat(ws.ingest.stdout)


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


def test_ask_over_url_prints_the_quote(ws, server):
    result = run_cli(ws.root, ws.seeds, "ask", LIGHT_QUESTION, "--url", server.url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert_no_traceback(result)
    out = flat(result.stdout)
    assert LIGHT_QUOTE + " [1]" in out and "lighthouse@" in out


def test_ask_over_url_reports_a_server_error_without_a_traceback(ws, server):
    result = run_cli(ws.root, ws.seeds, "ask", "x" * 5000, "--url", server.url)
    assert result.returncode != 0
    assert_no_traceback(result)
    assert "422" in result.stdout and "longer than" in flat(result.stdout)


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
