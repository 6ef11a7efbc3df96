"""``citeqa stress`` in CI: bounded versions of the two benches (real ``citeqa serve``
subprocesses, real SIGKILLs, real HTTP), plus quick checks that the checkers themselves
notice a loss, a torn FAISS file and bad options."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest

from citeqa.api.bench import BenchError
from citeqa.api.stress import (
    CORRUPTIONS,
    _verify,
    corrupt_faiss,
    fact_doc,
    index_agreement,
    is_loopback,
    parse_mix,
    run_crash,
    run_load,
)

CITEQA = Path(sys.executable).parent / "citeqa"


# -- the benches, bounded (~60 s together on 2 cores) ------------------------------------------


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


@pytest.mark.slow
def test_load_with_one_and_four_clients_has_no_errors_and_reports_figures():
    r = run_load(clients=(1, 4), duration=3)
    json.dumps(r)  # what --json writes
    assert r["errors"] == 0 and [level["clients"] for level in r["levels"]] == [1, 4]
    for level in r["levels"]:
        assert level["errors"] == 0 and level["error_kinds"] == {}, level
        assert 2.9 < level["elapsed_s"] < 3 + 5, level  # the duration bounds each level
        assert level["requests"] > 0 and level["req_per_s"] > 0
        assert 0 < level["p50_ms"] <= level["p95_ms"] <= level["p99_ms"]
        assert set(level["per_operation"]) == {"ask", "search", "ingest"}
        assert sum(op["requests"] for op in level["per_operation"].values()) == level["requests"]
        # The questions are about the seed article: most are answered, with citations.
        assert level["ask_status"].get("answered", 0) > level["ask_status"].get("unsupported", 0), level


@pytest.mark.slow
def test_the_cli_is_wired():
    help_run = subprocess.run([str(CITEQA), "stress", "--help"], capture_output=True, text=True, timeout=120)
    if help_run.returncode != 0:
        pytest.skip("`citeqa stress` is not registered in api/cli.py yet "
                    "(add `from api.stress import register` and `register(app)`)")
    assert "crash" in help_run.stdout and "load" in help_run.stdout
    # A load generator stays local unless told otherwise (and refuses before any traffic).
    refused = subprocess.run([str(CITEQA), "stress", "load", "--url", "http://192.0.2.1:8000", "--duration", "1"],
                             capture_output=True, text=True, timeout=120)
    said = " ".join(refused.stdout.split())  # rich wraps lines at the terminal width
    assert refused.returncode == 2 and "not a loopback address" in said and "--allow-remote" in said, said


# -- the checkers (no server, fast) ------------------------------------------------------------


def test_options_are_parsed_and_remote_urls_recognised():
    assert parse_mix("ask=6,search=3,ingest=1") == {"ask": 6, "search": 3, "ingest": 1}
    assert parse_mix("search=1") == {"ask": 0, "search": 1, "ingest": 0}
    for bad in ("ask=x", "delete=1", "ask=0"):
        with pytest.raises(ValueError):
            parse_mix(bad)
    assert all(map(is_loopback, ["http://127.0.0.1:8000", "http://localhost:1", "http://[::1]:2", "http://127.8.0.1"]))
    assert not any(map(is_loopback, ["http://10.0.0.1:8000", "https://example.com", "http://0.0.0.0:80"]))
    with pytest.raises(BenchError, match="allow-remote"):
        run_load(url="http://192.0.2.1:8000", duration=0.1)


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
        applied = _verify(client, acked, ["a", "b"], in_flight, r)
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
