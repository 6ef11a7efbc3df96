"""``POST /v1/documents:batch`` (api/routes/documents_batch.py) through the app factory, with
the real model, spaCy, FAISS and SQLite: each item is reported on its own, invalid items do
not stop the others, limits and collection rules hold per item, a re-send changes nothing,
and answers over batch-ingested documents keep the citation contract."""

from __future__ import annotations

import time
from typing import Any, Iterator

import pytest
from fastapi.testclient import TestClient

from citeqa.api.app import create_app
from citeqa.api.settings import Settings
from tests.support.citations import assert_citation_contract

BATCH = "/v1/documents:batch"
LINES = {
    "glacier": ("Glacier Line", "The Glacier Line opened in 1911. It carries about 40,000 passengers every winter."),
    "harbour": ("Kessel harbour", "Kessel harbour handled 7,300 ships in 1998. Its lighthouse is 52 metres tall."),
    "mill": ("Riverside mill", "The Riverside mill employed 1,200 workers. It closed in 1974 after a fire."),
}


def doc(doc_id: str, **extra: Any) -> dict[str, Any]:
    title, text = LINES[doc_id]
    return {"doc_id": doc_id, "title": title, "text": text, **extra}


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture(scope="module")
def app_client(tmp_path_factory, embedder) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("batch") / "data", seeds_dir=None, max_batch_documents=4,
                        max_metadata_bytes=64)
    with TestClient(create_app(settings, embedder=embedder)) as c:
        yield c


def test_each_item_is_reported_and_invalid_ones_do_not_stop_the_others(app_client):
    body = [
        doc("glacier"),
        {"doc_id": "no-text", "title": "Missing"},  # no text: the JSON route's 422
        {**doc("harbour"), "text": "   "},  # text of white space only: ingest refuses it
        doc("mill", metadata={"note": "x" * 100}),  # metadata over the limit (64 bytes here)
    ]
    r = app_client.post(BATCH, json={"documents": body})
    assert r.status_code == 200, r.text
    out = r.json()
    items = out["documents"]
    assert [i["index"] for i in items] == [0, 1, 2, 3]
    assert (out["created"], out["unchanged"], out["failed"]) == (1, 0, 3)
    created = items[0]
    assert created["status"] == "created" and created["http_status"] == 201
    assert created["doc_id"] == "glacier" and created["collection"] == "default" and created["sentence_count"] == 2
    for item, code, said in ((items[1], "invalid_request", "text"), (items[2], "invalid_document", "empty"),
                             (items[3], "invalid_request", "metadata")):
        assert item["status"] == "error" and item["http_status"] == 422, item
        assert item["error"]["code"] == code and said in item["error"]["message"], item
    assert items[1]["doc_id"] == "no-text"
    # What the batch says was stored is stored, with the version it named; the rest is not.
    got = app_client.get("/v1/documents/glacier").json()
    assert got["doc_version"] == created["doc_version"] and got["text"] == LINES["glacier"][1]
    for missing in ("no-text", "harbour", "mill"):
        assert app_client.get(f"/v1/documents/{missing}").status_code == 404


def test_a_resend_is_unchanged_and_a_changed_item_is_a_new_version(app_client):
    first = app_client.post(BATCH, json={"documents": [doc("harbour"), doc("mill")]}).json()
    assert [i["status"] for i in first["documents"]] == ["created", "created"]
    again = app_client.post(BATCH, json={"documents": [doc("harbour"), doc("mill")]}).json()
    assert [i["status"] for i in again["documents"]] == ["unchanged", "unchanged"]
    assert [i["http_status"] for i in again["documents"]] == [200, 200]
    assert [i["doc_version"] for i in again["documents"]] == [i["doc_version"] for i in first["documents"]]
    changed = {**doc("mill"), "text": LINES["mill"][1].replace("1,200", "1,500")}
    third = app_client.post(BATCH, json={"documents": [doc("harbour"), changed]}).json()
    assert [i["status"] for i in third["documents"]] == ["unchanged", "created"]
    assert third["documents"][1]["doc_version"] != first["documents"][1]["doc_version"]
    assert "1,500" in app_client.get("/v1/documents/mill").json()["text"]


def test_the_same_document_twice_in_one_batch_stores_the_last(app_client):
    v1 = {**doc("glacier"), "doc_id": "twice"}
    v2 = {**v1, "text": "It opened in 1903."}
    out = app_client.post(BATCH, json={"documents": [v1, v2]}).json()
    assert [i["status"] for i in out["documents"]] == ["created", "created"]
    current = app_client.get("/v1/documents/twice").json()
    assert current["doc_version"] == out["documents"][1]["doc_version"] and current["text"] == "It opened in 1903."
    old = app_client.get("/v1/documents/twice", params={"version": out["documents"][0]["doc_version"]}).json()
    assert old["current"] is False and old["text"] == LINES["glacier"][1]


def test_more_documents_than_the_limit_get_413_and_store_nothing(app_client):
    many = [{"doc_id": f"many{i}", "text": f"Item {i} is here."} for i in range(5)]  # the limit is 4 here
    r = app_client.post(BATCH, json={"documents": many})
    assert r.status_code == 413, r.text
    assert r.json()["error"]["code"] == "payload_too_large" and "at most 4 documents" in r.json()["error"]["message"]
    assert app_client.get("/v1/documents/many0").status_code == 404
    assert app_client.post(BATCH, json={"documents": []}).status_code == 422
    assert app_client.post(BATCH, json={"documents": many[:4], "extra": 1}).status_code == 422


def test_the_path_does_not_take_a_document_named_batch(app_client):
    """``/v1/documents/batch`` stays a document id: storing and reading it are untouched."""
    r = app_client.post("/v1/documents", json={"doc_id": "batch", "text": "A document named batch."})
    assert r.status_code == 201
    assert app_client.get("/v1/documents/batch").json()["text"] == "A document named batch."
    assert app_client.get(BATCH).status_code == 405
    assert BATCH in app_client.get("/openapi.json").json()["paths"]
    # Metrics and access logs name the whole template (a router included in another named it ":batch").
    assert app_client.post(BATCH, json={"documents": [doc("glacier")]}).status_code == 200
    assert 'route="/v1/documents:batch"' in app_client.get("/metrics").text


def test_a_key_limited_to_collections_writes_only_those(app_client):
    keys = app_client.app.state.keys
    _, writer = keys.create("alpha-writer", ["read", "write"], rate_per_s=0, collections=["alpha"])
    _, reader = keys.create("alpha-reader", ["read"], rate_per_s=0, collections=["alpha"])
    # Auth turns on once keys exist, as the server next looks (api/security.py: once a second).
    # (The last test of this module on app_client: from here on a request needs a key.)
    time.sleep(1.1)
    items = [doc("glacier", collection="alpha"), doc("harbour", collection="beta"), doc("mill")]
    r = app_client.post(BATCH, json={"documents": items}, headers=bearer(writer))
    assert r.status_code == 200, r.text
    out = r.json()["documents"]
    assert out[0]["status"] == "created" and out[0]["collection"] == "alpha"
    # beta: as if it did not exist (404, named); no collection: the key's only one, alpha.
    assert out[1]["status"] == "error" and out[1]["http_status"] == 404
    assert out[1]["error"]["message"] == "collection 'beta' not found"
    assert out[2]["status"] == "created" and out[2]["collection"] == "alpha"
    admin_view = app_client.get("/v1/documents/harbour", params={"collection": "beta"})
    assert admin_view.status_code == 404  # nothing was stored in beta
    # A batch-wide collection applies to the items that name none.
    r = app_client.post(BATCH, json={"collection": "alpha", "documents": [doc("harbour")]}, headers=bearer(writer))
    assert r.json()["documents"][0]["collection"] == "alpha"
    # A key without the write scope may not send a batch at all.
    assert app_client.post(BATCH, json={"documents": [doc("mill")]}, headers=bearer(reader)).status_code == 403


@pytest.mark.slow
def test_answers_over_batch_ingested_documents_keep_the_citation_contract(tmp_path, embedder):
    settings = Settings(data_dir=tmp_path / "data", seeds_dir=None)
    with TestClient(create_app(settings, embedder=embedder)) as c:
        out = c.post(BATCH, json={"documents": [doc(name) for name in LINES]}).json()
        assert out["created"] == len(LINES)
        body = c.post("/v1/ask", json={"question": "How many workers did the Riverside mill employ?"}).json()
        assert body["status"] == "answered" and "1,200" in body["answer"], body
        assert {cite["doc_id"] for cite in body["citations"]} >= {"mill"}
        assert_citation_contract(c, body)
