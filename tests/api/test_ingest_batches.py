"""``citeqa ingest --url`` sends JSON documents in batches (api/ingest_files.py, api/client.py
``post_batch``): against scripted servers (batch sizes, per-document errors, 413, a server
from before the batch route) and, end to end, against a real ``citeqa serve``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from rich.progress import Progress

from citeqa.api.ingest_files import Tally, ingest_remotely
from citeqa.index.file_input import input_files

BATCH = "/v1/documents:batch"


def write_jsonl(path: Path, count: int, start: int = 0) -> None:
    rows = [{"doc_id": f"d{i}", "text": f"Document {i} is short. It has two sentences."}
            for i in range(start, start + count)]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")


class ScriptedServer:
    """Answers like a citeqa server: a batch item by item (``refused`` doc_ids get a 422),
    a single document with 201; ``max_batch`` documents per batch at most (413 beyond);
    ``batch_route`` False: a server from before the batch route (404 for it)."""

    def __init__(self, max_batch: int = 100, batch_route: bool = True, refused: frozenset[str] = frozenset()):
        self.max_batch, self.batch_route, self.refused = max_batch, batch_route, refused
        self.requests: list[tuple[str, int]] = []  # (path, documents)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.read())
        if request.url.path == BATCH:
            self.requests.append((BATCH, len(body["documents"])))
            if not self.batch_route:
                return httpx.Response(404, json={"error": {"code": "not_found", "message": "Not Found"}})
            if len(body["documents"]) > self.max_batch:
                return httpx.Response(413, json={"error": {"code": "payload_too_large", "message": "too many"}})
            return httpx.Response(200, json={"documents": [self._item(i, d) for i, d in enumerate(body["documents"])]})
        self.requests.append((request.url.path, 1))
        if body["doc_id"] in self.refused:
            return httpx.Response(422, json={"error": {"code": "invalid_document", "message": "refused"}})
        return httpx.Response(201, json={"created": True, "sentence_count": 2})

    def _item(self, index: int, doc: dict) -> dict:
        if doc["doc_id"] in self.refused:
            return {"index": index, "status": "error", "http_status": 422, "doc_id": doc["doc_id"],
                    "error": {"code": "invalid_document", "message": "refused"}}
        return {"index": index, "status": "created", "http_status": 201, "doc_id": doc["doc_id"],
                "sentence_count": 2}


def run(tmp_path: Path, server: ScriptedServer, batch: int = 100) -> tuple[Tally, list[tuple[Path, str]]]:
    reported: list[tuple[Path, str]] = []
    with httpx.Client(base_url="http://test", transport=httpx.MockTransport(server)) as client, \
            Progress(disable=True) as progress:
        tally = ingest_remotely(input_files([tmp_path]).files, client, progress,
                                lambda path, problem: reported.append((path, problem)), batch=batch)
    return tally, reported


def test_documents_of_several_files_go_in_batches_and_a_refused_one_is_named(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", 7)
    write_jsonl(tmp_path / "b.jsonl", 5, start=7)
    (tmp_path / "c.txt").write_text("A text file. Sent as JSON too.", encoding="utf-8")
    server = ScriptedServer(refused=frozenset({"d8"}))
    tally, reported = run(tmp_path, server, batch=5)
    assert server.requests == [(BATCH, 5), (BATCH, 5), (BATCH, 3)]
    assert reported == [(tmp_path / "b.jsonl", "422 refused")]
    assert tally.summary() == "12 stored, 0 unchanged, 24 sentences, 1 failed" and tally.stopped is None


def test_a_batch_too_large_for_the_server_is_sent_in_halves(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", 10)
    server = ScriptedServer(max_batch=3)
    tally, _ = run(tmp_path, server, batch=10)
    sent = [n for path, n in server.requests if path == BATCH]
    assert sent[0] == 10 and sum(n for n in sent if n <= 3) == 10  # every document once, in batches it takes
    assert tally.created == 10 and not tally.failed


def test_a_server_without_the_batch_route_gets_one_document_per_request(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", 4)
    server = ScriptedServer(batch_route=False, refused=frozenset({"d2"}))
    tally, reported = run(tmp_path, server, batch=2)
    assert server.requests == [(BATCH, 2)] + [("/v1/documents", 1)] * 4  # asked once, then never again
    assert reported == [(tmp_path / "a.jsonl", "422 refused")]
    assert tally.created == 3


@pytest.mark.parametrize("status", [401, 503])
def test_an_answer_every_request_would_get_stops_the_run(tmp_path, status):
    write_jsonl(tmp_path / "a.jsonl", 3)
    with httpx.Client(base_url="http://test", transport=httpx.MockTransport(
            lambda r: httpx.Response(status, json={"error": {"code": "x", "message": "no entry"}}))) as client, \
            Progress(disable=True) as progress:
        tally = ingest_remotely(input_files([tmp_path]).files, client, progress, lambda *_: None)
    assert tally.stopped == f"{status} no entry" and tally.created == 0


@pytest.mark.slow
def test_cli_ingest_over_url_uses_the_batch_route_of_a_real_server(tmp_path):
    from tests.support.servers import Server

    (tmp_path / "no-seeds").mkdir()
    docs = tmp_path / "docs"
    docs.mkdir()
    write_jsonl(docs / "many.jsonl", 6)
    # Valid here, refused by the server alone: metadata over its limit.
    (docs / "bad.jsonl").write_text(json.dumps({"doc_id": "big", "text": "Fine text.", "metadata": {"n": "x" * 99}})
                                    + "\n", encoding="utf-8")
    server = Server(tmp_path / "data", tmp_path, env={"CITEQA_SEEDS_DIR": str(tmp_path / "no-seeds"),
                                                      "CITEQA_MAX_METADATA_BYTES": "64"})
    try:
        server.start()
        citeqa = Path(sys.executable).parent / "citeqa"
        command = [str(citeqa), "ingest", str(docs), "--url", server.url, "--batch", "4"]
        first = subprocess.run(command, capture_output=True, text=True, env=server.env(), cwd=tmp_path, timeout=300)
        assert first.returncode == 1, first.stdout + first.stderr  # one document was refused
        out = " ".join(first.stdout.split())
        assert "6 stored, 0 unchanged, 12 sentences, 1 failed" in out, out
        assert "bad.jsonl" in out and "422" in out
        again = subprocess.run(command, capture_output=True, text=True, env=server.env(), cwd=tmp_path, timeout=300)
        assert "0 stored, 6 unchanged, 12 sentences, 1 failed" in " ".join(again.stdout.split())
        with server.client() as client:
            assert client.get("/v1/documents/d5").json()["text"] == "Document 5 is short. It has two sentences."
            metrics = client.get("/metrics").text
        batches = [line for line in metrics.splitlines()
                   if line.startswith("citeqa_http_requests_total{") and 'route="/v1/documents:batch"' in line]
        assert batches and sum(float(line.rsplit(" ", 1)[1]) for line in batches) == 4  # 2 runs x (4 + 3 documents)
        assert not [line for line in metrics.splitlines()
                    if line.startswith("citeqa_http_requests_total{") and 'method="POST",route="/v1/documents"' in line]
    finally:
        server.kill_quietly()
