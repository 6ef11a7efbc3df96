"""End to end: the real ``citeqa serve`` console script (api/cli.py) in a subprocess, real HTTP.

Covers what only a real process shows: curl-style bodies, versioning and error shapes over
the wire, restarts on the same data directory (seeds indexed once, deletes respected), and
SIGKILL in the middle of ingest (every acknowledged write survives, SQLite and FAISS agree).
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.support.citations import assert_citation_contract
from tests.support.corpus import TROOPS_QUESTION, UNSUPPORTED_QUESTION
from tests.support.servers import Server, serving

pytestmark = pytest.mark.slow

SEED_LOG_LINE = "seed document(s)"


def _all_documents(client: httpx.Client) -> list[dict]:
    docs, offset = [], 0
    while offset is not None:
        page = client.get("/v1/documents", params={"limit": 1000, "offset": offset})
        assert page.status_code == 200, page.text
        docs.extend(page.json()["documents"])
        offset = page.json()["next_offset"]
    return docs


def _assert_error(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    return error


# -- one server for the request/response tests -----------------------------------------------


MAX_BODY = 20_000


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with serving(tmp_path_factory.mktemp("serve"), env={"CITEQA_MAX_BODY_BYTES": str(MAX_BODY)}) as srv:
        yield srv


@pytest.fixture
def http(server):
    with server.client() as c:
        yield c


def test_ask_with_a_curl_style_body_is_answered_and_cited(http):
    # `curl -d '{...}'` sends raw JSON labelled as a form; the API must read it as JSON.
    r = http.post("/v1/ask", content=json.dumps({"question": TROOPS_QUESTION}).encode(),
                  headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "answered"
    assert any("11,000 to 12,000" in c["quote"] for c in body["citations"]), body
    assert_citation_contract(http, body)


def test_unsupported_question_gets_no_citations(http):
    r = http.post("/v1/ask", json={"question": UNSUPPORTED_QUESTION})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "unsupported"
    assert body["citations"] == []


def test_document_versions_over_http(http):
    doc_id = "serve-versioning"
    v1_text = "The Meridian tram opened in 1911. It ran along the harbour wall. Its depot burned in 1950."
    v2_text = "The Meridian tram opened in 1912. It ran along the harbour wall. Its depot was rebuilt in 1951."

    first = http.post("/v1/documents", json={"doc_id": doc_id, "text": v1_text, "title": "Tram"})
    assert first.status_code == 201, first.text
    v1 = first.json()
    assert v1["created"] is True and v1["sentence_count"] == 3

    again = http.post("/v1/documents", json={"doc_id": doc_id, "text": v1_text, "title": "Tram"})
    assert again.status_code == 200, again.text
    assert again.json()["doc_version"] == v1["doc_version"] and again.json()["created"] is False

    second = http.post("/v1/documents", json={"doc_id": doc_id, "text": v2_text, "title": "Tram"})
    assert second.status_code == 201, second.text
    v2 = second.json()
    assert v2["doc_version"] != v1["doc_version"]

    old = http.get(f"/v1/documents/{doc_id}", params={"version": v1["doc_version"]})
    assert old.status_code == 200 and old.json()["text"] == v1_text and old.json()["current"] is False
    new = http.get(f"/v1/documents/{doc_id}")
    assert new.status_code == 200
    assert new.json()["text"] == v2_text and new.json()["doc_version"] == v2["doc_version"]
    assert new.json()["current"] is True

    # The current version is what search finds; the old sentence is no longer searchable.
    hits = http.post("/v1/search", json={"query": "Meridian tram depot rebuilt 1951", "top_k": 10}).json()["hits"]
    assert any(h["doc_id"] == doc_id and h["doc_version"] == v2["doc_version"] for h in hits), hits
    assert not any(h["doc_id"] == doc_id and h["doc_version"] == v1["doc_version"] for h in hits), hits

    deleted = http.delete(f"/v1/documents/{doc_id}")
    assert deleted.status_code == 204
    hits = http.post("/v1/search", json={"query": "Meridian tram harbour wall depot", "top_k": 20}).json()["hits"]
    assert not any(h["doc_id"] == doc_id for h in hits), hits
    _assert_error(http.get(f"/v1/documents/{doc_id}"), 404)
    assert doc_id not in {d["doc_id"] for d in _all_documents(http)}
    # Citations name versions, and versions stay readable after a delete.
    kept = http.get(f"/v1/documents/{doc_id}", params={"version": v2["doc_version"]})
    assert kept.status_code == 200 and kept.json()["text"] == v2_text
    _assert_error(http.delete(f"/v1/documents/{doc_id}"), 404)


def test_bad_input_gets_4xx_with_an_error_body(http, server):
    form = {"content-type": "application/x-www-form-urlencoded"}
    err = _assert_error(http.post("/v1/ask", content=b'{"question": "troops?"', headers=form), 422)
    assert err["code"] == "invalid_request"
    _assert_error(http.post("/v1/ask", content=b"\xff\xfe not utf-8", headers=form), 422)
    _assert_error(http.post("/v1/ask", json=["not", "an", "object"]), 422)
    _assert_error(http.post("/v1/ask", json={"question": TROOPS_QUESTION, "topk": 3}), 422)

    # Over the limit: with a declared Content-Length, and streamed in chunks without one.
    big = json.dumps({"text": "Tungsten is dense. " * (MAX_BODY // 10)}).encode()
    assert len(big) > MAX_BODY
    err = _assert_error(http.post("/v1/documents", content=big), 413)
    assert err["code"] == "payload_too_large"

    def chunks():
        for i in range(0, len(big), 4096):
            yield big[i:i + 4096]

    _assert_error(http.post("/v1/documents", content=chunks(), headers={"content-type": "application/json"}), 413)
    # A body just under the limit is still accepted.
    fits = json.dumps({"doc_id": "serve-fits", "text": "Basalt columns cool slowly. " * 50}).encode()
    assert len(fits) < MAX_BODY
    assert http.post("/v1/documents", content=fits, headers=form).status_code == 201

    for top_k in (0, 10**6, -1):
        _assert_error(http.post("/v1/ask", json={"question": TROOPS_QUESTION, "top_k": top_k}), 422)
        _assert_error(http.post("/v1/search", json={"query": "troops", "top_k": top_k}), 422)

    seed_id = _all_documents(http)[0]["doc_id"]
    err = _assert_error(http.get(f"/v1/documents/{seed_id}", params={"version": "0000000000000000"}), 404)
    assert err["code"] == "not_found"
    _assert_error(http.get("/v1/documents/no-such-document"), 404)
    _assert_error(http.post("/v1/documents", json={"text": "   "}), 422)
    _assert_error(http.post("/v1/documents", json={"text": "Fine. Text.", "doc_id": 5}), 422)

    # The server is still healthy after all of that.
    assert http.get("/readyz").status_code == 200
    assert " 500 " not in server.log()


# -- restarts ---------------------------------------------------------------------------------


def test_restart_keeps_documents_and_does_not_reseed(tmp_path):
    srv = Server(tmp_path / "data", tmp_path)
    try:
        srv.start()
        assert SEED_LOG_LINE in srv.log(), "first start of a data dir must index the seeds"
        with srv.client() as http:
            seeded = _all_documents(http)
            assert len(seeded) >= 1
            seed = seeded[0]
            user = http.post("/v1/documents", json={
                "doc_id": "restart-user-doc",
                "text": "Quillfeather harbour froze in 1740. Ships waited for weeks. The thaw came in April.",
            })
            assert user.status_code == 201, user.text
            before = {d["doc_id"]: d["doc_version"] for d in _all_documents(http)}
            sentences_before = http.get("/readyz").json()["sentences"]
        srv.shut_down()

        srv.start()
        assert SEED_LOG_LINE not in srv.log(), "seeds were indexed again on restart:\n" + srv.log()
        with srv.client() as http:
            assert {d["doc_id"]: d["doc_version"] for d in _all_documents(http)} == before
            assert http.get("/readyz").json()["sentences"] == sentences_before
            doc = http.get("/v1/documents/restart-user-doc").json()
            assert doc["text"].startswith("Quillfeather harbour froze in 1740.")
            hits = http.post("/v1/search", json={"query": "Quillfeather harbour froze"}).json()["hits"]
            assert hits and hits[0]["doc_id"] == "restart-user-doc"
            # The user removes the seed document; a restart must not bring it back.
            assert http.delete(f"/v1/documents/{seed['doc_id']}").status_code == 204
        srv.shut_down()

        srv.start()
        assert SEED_LOG_LINE not in srv.log(), srv.log()
        with srv.client() as http:
            after = {d["doc_id"]: d["doc_version"] for d in _all_documents(http)}
            assert seed["doc_id"] not in after
            assert after == {k: v for k, v in before.items() if k != seed["doc_id"]}
            _assert_error(http.get(f"/v1/documents/{seed['doc_id']}"), 404)
            # Its version is still readable (old citations resolve), but not searchable.
            old = http.get(f"/v1/documents/{seed['doc_id']}", params={"version": seed["doc_version"]})
            assert old.status_code == 200
            body = http.post("/v1/ask", json={"question": TROOPS_QUESTION}).json()
            assert not any(c["doc_id"] == seed["doc_id"] for c in body["citations"]), body
    finally:
        srv.kill_quietly()


# -- SIGKILL during ingest --------------------------------------------------------------------

_COLOURS = ["amber", "cobalt", "crimson", "ivory", "jade", "ochre", "scarlet", "teal", "umber", "violet"]
_ANIMALS = ["heron", "otter", "lynx", "badger", "falcon", "marten", "puffin", "stoat", "vole", "wren"]
_PLACES = ["the old mill", "the north quay", "the chalk pit", "the ferry slip", "the orchard", "the weir"]


def _kill_doc(cycle: int, i: int) -> tuple[str, str, str]:
    token = f"zorvik{cycle}x{i}"
    text = (
        f"Survey note {cycle}-{i} records a {_COLOURS[i % 10]} {_ANIMALS[(i // 10) % 10]} near "
        f"{_PLACES[i % 6]}. The field code for this sighting is {token}. "
        f"It was seen {i + 2} times before dusk on day {cycle * 1000 + i}."
    )
    return f"kill-{cycle}-{i}", text, token


class _Writer(threading.Thread):
    """POSTs distinct documents one after another until the server goes away."""

    def __init__(self, url: str, cycle: int):
        super().__init__(daemon=True)
        self.url, self.cycle = url, cycle
        self.acked: dict[str, dict] = {}  # doc_id -> {version, text, token, sentences}
        self.unacked: dict[str, str] = {}  # sent, outcome unknown: doc_id -> text
        self.unexpected: list[str] = []

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            for i in range(100_000):
                doc_id, text, token = _kill_doc(self.cycle, i)
                self.unacked[doc_id] = text
                try:
                    r = client.post("/v1/documents", json={"doc_id": doc_id, "text": text})
                except httpx.TransportError:
                    return
                if r.status_code not in (200, 201):
                    self.unexpected.append(f"{doc_id}: {r.status_code} {r.text}")
                    return
                body = r.json()
                self.acked[doc_id] = {"version": body["doc_version"], "text": text, "token": token,
                                      "sentences": body["sentence_count"]}
                del self.unacked[doc_id]


def _faiss_ids(path: Path) -> set[int]:
    import faiss

    index = faiss.read_index(str(path))  # keep a reference: id_map's memory belongs to it
    assert index.ntotal == index.id_map.size()
    return {int(i) for i in faiss.vector_to_array(index.id_map)}


def _sqlite_active_ids(path: Path) -> set[int]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {r[0] for r in conn.execute("SELECT id FROM sentences WHERE active = 1")}
    finally:
        conn.close()


def test_sigkill_during_ingest_loses_no_acknowledged_write(tmp_path):
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    data_dir = tmp_path / "data"
    srv = Server(data_dir, tmp_path)
    acked: dict[str, dict] = {}
    # Vary how often FAISS is saved: never before the kill, on every write (a kill can land
    # mid-save), and in between; recovery must not depend on it.
    save_intervals = ["60", "0", "0.3"]
    stale_after_kill: list[bool] = []
    try:
        srv.start(CITEQA_FAISS_SAVE_INTERVAL_S=save_intervals[0])
        for cycle in range(3):
            assert srv.children() == [], "uvicorn must run in-process (a SIGKILL would orphan workers)"
            writer = _Writer(srv.url, cycle)
            writer.start()
            deadline = time.monotonic() + 60
            while len(writer.acked) < 2 and writer.is_alive() and time.monotonic() < deadline:
                time.sleep(0.02)
            assert len(writer.acked) >= 2, f"no writes acknowledged (seed {seed}): {writer.unexpected}\n{srv.log()}"
            time.sleep(rng.uniform(0.05, 1.0))
            srv.stop(signal.SIGKILL)
            assert srv.proc.returncode == -signal.SIGKILL
            writer.join(30)
            assert not writer.is_alive()
            assert writer.unexpected == [], writer.unexpected
            acked.update(writer.acked)
            faiss_file = data_dir / "vectors.faiss"
            on_disk = _faiss_ids(faiss_file) if faiss_file.exists() else set()
            stale_after_kill.append(on_disk != _sqlite_active_ids(data_dir / "citeqa.sqlite3"))
            print(f"cycle {cycle}: {len(writer.acked)} acked, {len(writer.unacked)} in flight, "
                  f"FAISS file stale: {stale_after_kill[-1]}")

            srv.start(CITEQA_FAISS_SAVE_INTERVAL_S=save_intervals[(cycle + 1) % 3])
            context = f"cycle {cycle}, random seed {seed}, {len(writer.acked)} acked this cycle"
            with srv.client() as http:
                for doc_id, want in acked.items():
                    r = http.get(f"/v1/documents/{doc_id}")
                    assert r.status_code == 200, f"acknowledged {doc_id} lost ({context})"
                    got = r.json()
                    assert (got["doc_version"], got["text"]) == (want["version"], want["text"]), context
                    assert len(got["sentences"]) == want["sentences"]
                # Found by search, dense + lexical, so SQLite, FTS and FAISS all hold it.
                for doc_id, want in writer.acked.items():
                    hits = http.post("/v1/search", json={"query": want["token"], "top_k": 3}).json()["hits"]
                    assert hits and hits[0]["doc_id"] == doc_id, f"{doc_id} not searchable ({context}): {hits}"
                    assert hits[0]["dense_score"] is not None
                # A write in flight at the kill either happened completely or not at all.
                for doc_id, text in writer.unacked.items():
                    r = http.get(f"/v1/documents/{doc_id}")
                    assert r.status_code in (200, 404), r.text
                    if r.status_code == 200:
                        assert r.json()["text"] == text
                        acked[doc_id] = {"version": r.json()["doc_version"], "text": text,
                                          "sentences": len(r.json()["sentences"])}

                live = _all_documents(http)
                assert {d["doc_id"] for d in live} >= set(acked)
                total = 0
                for d in live:
                    doc = http.get(f"/v1/documents/{d['doc_id']}").json()
                    total += len(doc["sentences"])
                ready = http.get("/readyz").json()
                assert ready["sentences"] == total, context
                # The FAISS file on disk was reconciled at start: exactly the live sentences.
                assert _faiss_ids(data_dir / "vectors.faiss") == _sqlite_active_ids(data_dir / "citeqa.sqlite3")
                assert len(_faiss_ids(data_dir / "vectors.faiss")) == total
        srv.shut_down()
    finally:
        srv.kill_quietly()
    # The first cycle never saves FAISS before the kill, so recovery really was exercised.
    assert stale_after_kill[0], stale_after_kill
