"""``citeqa stress crash`` bounded for CI (real ``citeqa serve`` subprocesses, real SIGKILLs,
real HTTP), plus quick checks that the checkers themselves notice a loss and a torn FAISS file."""

from __future__ import annotations

import os
import random

import httpx
import numpy as np
import pytest

from citeqa.bench.stress_crash import CORRUPTIONS, corrupt_faiss, fact_doc, index_agreement, run_crash, verify


@pytest.mark.slow
def test_crash_three_kills_and_a_corrupted_faiss_file_lose_nothing():
    seed = int.from_bytes(os.urandom(4), "big")  # a new kill schedule each run; printed to replay it
    r = run_crash(cycles=3, seed=seed, corrupt_every=2, max_delay_s=1.5, log=print)
    context = f"seed {seed}; server logs: {r.get('logs')}"
    assert r["kills"] == 3 and all(n >= 1 for n in r["acked_per_cycle"]), context
    assert r["lost"] == [] and r["lost_count"] == 0, context
    assert r["unsearchable"] == [] and r["torn_in_flight"] == [], context
    assert r["index_mismatches"] == [] and r["server_failures"] == [] and r["unexpected"] == [], context
    assert r["corruptions"] == [CORRUPTIONS[0]] and r["faiss_rebuilds"] == 1, context
    assert r["tracebacks"] == 0 and r["ok"], context
    assert len(r["cycle_s"]) == 4 and r["cycle_s_median"] > 0


def test_fact_documents_have_unique_code_words():
    words = {fact_doc(cycle, i)[2] for cycle in range(20) for i in range(300)}
    assert len(words) == 20 * 300
    doc_id, text, word = fact_doc(3, 7)
    assert doc_id == "stress-3-7" and f"is {word}." in text


def test_verify_reports_lost_unsearchable_and_torn_documents():
    # What the server holds: "c" was acknowledged but is gone; of the writes in flight at the
    # kill, stress-0-1 landed whole, stress-0-2 never landed and stress-0-3 landed torn.
    stored = {"a": "text a", "b": "text b", "stress-0-1": "text d", "stress-0-3": "text f, torn"}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            text = stored.get(request.url.path.rsplit("/", 1)[1])
            if text is None or request.url.params.get("version", "v1") != "v1":
                return httpx.Response(404, json={"error": {"code": "not_found", "message": "no"}})
            return httpx.Response(200, json={"doc_version": "v1", "text": text})
        return httpx.Response(200, json={"hits": [{"doc_id": "a", "doc_version": "v1"}]})  # search finds "a" only

    acked = {k: {"version": "v1", "text": f"text {k}", "word": k} for k in "abc"}
    in_flight = {"stress-0-1": "text d", "stress-0-2": "text e", "stress-0-3": "text f"}
    r: dict = {"lost": [], "unsearchable": [], "torn_in_flight": []}
    with httpx.Client(base_url="http://test", transport=httpx.MockTransport(handler)) as client:
        applied = verify(client, acked, ["a", "b"], in_flight, r)
    assert [x.split("@")[0] for x in r["lost"]] == ["c"]
    assert r["torn_in_flight"] == ["stress-0-3"]
    assert set(applied) == {"stress-0-1"}  # all or nothing: stress-0-2 not stored is fine, it was never acked
    assert sorted(r["unsearchable"]) == ["b", "stress-0-1"]


def test_index_agreement_sees_a_torn_faiss_file(tmp_path):
    from citeqa.index.embedded_store import EmbeddedStore
    from citeqa.index.types import Document, Sentence

    store = EmbeddedStore(tmp_path, dimension=4, save_interval_s=0)
    text = "One. Two."
    store.put(Document("d", "v1", text), [Sentence("d", "v1", 0, 0, 4, "One."), Sentence("d", "v1", 1, 5, 9, "Two.")],
              np.eye(4, dtype=np.float32)[:2])
    store.close()
    live, on_disk = index_agreement(tmp_path)
    assert len(live) == 2 and live == on_disk
    for how in CORRUPTIONS:
        corrupt_faiss(tmp_path / "vectors.faiss", how, random.Random(0))
        live, on_disk = index_agreement(tmp_path)
        assert len(live) == 2 and on_disk == set(), how
