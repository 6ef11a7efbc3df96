"""The PostgreSQL store shared by stateless replicas: two `citeqa serve` processes on one
PostgreSQL (+ pgvector). A document ingested through one is cited by the other; killing
one loses nothing."""

from __future__ import annotations

import signal

import pytest

from tests.support.citations import assert_citation_contract
from tests.support.corpus import TROOPS_QUESTION
from tests.support.servers import Server

pytestmark = pytest.mark.slow

NOTE = {"doc_id": "lighthouse", "title": "Bell Rock Lighthouse",
        "text": "The Bell Rock Lighthouse stands off the coast of Angus. "
                "Its light can be seen from 35 nautical miles away."}


def test_two_replicas_share_one_database(tmp_path, database_url):
    env = {"CITEQA_STORE": database_url}
    a = Server(tmp_path / "a", tmp_path, env=env).start()
    b = Server(tmp_path / "b", tmp_path, env=env).start()
    try:
        with a.client() as ca, b.client() as cb:
            # Seeds were indexed once, by whichever replica started first.
            assert ca.get("/v1/documents").json()["total"] == cb.get("/v1/documents").json()["total"] == 1
            written = ca.post("/v1/documents", json=NOTE)
            assert written.status_code == 201
            body = cb.post("/v1/ask", json={"question": "How far away can the Bell Rock light be seen?"}).json()
            assert body["status"] == "answered" and body["citations"][0]["doc_id"] == "lighthouse"
            assert "35 nautical miles" in body["citations"][0]["quote"]
            assert_citation_contract(cb, body)
            troops = cb.post("/v1/ask", json={"question": TROOPS_QUESTION}).json()
            assert "11,000 to 12,000" in troops["citations"][0]["quote"]
        # Kill one replica mid-life: nothing it acknowledged is lost, the other serves on.
        a.stop(signal.SIGKILL)
        with b.client() as cb:
            doc = cb.get("/v1/documents/lighthouse", params={"version": written.json()["doc_version"]})
            assert doc.status_code == 200 and doc.json()["text"] == NOTE["text"]
            more = cb.post("/v1/documents", json={**NOTE, "doc_id": "lighthouse-2"})
            assert more.status_code == 201
        a.start()
        with a.client() as ca:
            assert ca.get("/v1/documents/lighthouse-2").status_code == 200
            assert ca.get("/v1/documents").json()["total"] == 3
    finally:
        a.kill_quietly()
        b.kill_quietly()
