"""/v1/documents (api/routes/documents.py) through the app factory: versions, deletes,
pagination, code-point offsets (real model, FAISS and SQLite; TestClient)."""

from __future__ import annotations

from tests.contracts.concurrency import run_at_once
from tests.support.citations import assert_citation_contract

ARTICLE = (
    "The Glacier Line opened in 1911. It carries about 40,000 passengers every winter.\n"
    "Its steepest section climbs 110 metres per kilometre near the Albula pass."
)


def test_versions_stay_readable_and_only_current_is_searched(client):
    first = client.post("/v1/documents", json={"doc_id": "rail", "title": "Rail", "text": ARTICLE})
    assert first.status_code == 201
    v1 = first.json()
    assert v1["sentence_count"] == 3 and v1["created"] is True

    again = client.post("/v1/documents", json={"doc_id": "rail", "title": "Rail", "text": ARTICLE})
    assert again.status_code == 200 and again.json()["doc_version"] == v1["doc_version"]

    changed = ARTICLE.replace("1911", "1903")
    second = client.post("/v1/documents", json={"doc_id": "rail", "title": "Rail", "text": changed})
    assert second.status_code == 201
    v2 = second.json()["doc_version"]
    assert v2 != v1["doc_version"]

    old = client.get("/v1/documents/rail", params={"version": v1["doc_version"]}).json()
    assert old["text"] == ARTICLE and old["current"] is False
    current = client.get("/v1/documents/rail").json()
    assert current["text"] == changed and current["doc_version"] == v2 and current["current"] is True
    for s in current["sentences"]:
        assert s["id"].startswith("rail:")
        assert current["text"][s["start"]:s["end"]].strip()

    hits = client.post("/v1/search", json={"query": "When did the Glacier Line open?", "top_k": 10}).json()["hits"]
    rail = [h for h in hits if h["doc_id"] == "rail"]
    assert rail and all(h["doc_version"] == v2 for h in rail)
    assert any("1903" in h["text"] for h in rail) and not any("1911" in h["text"] for h in rail)


def test_delete_stops_retrieval_but_versions_resolve(client):
    v = client.post("/v1/documents", json={"doc_id": "rail", "text": ARTICLE}).json()["doc_version"]
    assert client.delete("/v1/documents/rail").status_code == 204
    hits = client.post("/v1/search", json={"query": "Glacier Line passengers", "top_k": 20}).json()["hits"]
    assert all(h["doc_id"] != "rail" for h in hits)
    assert client.get("/v1/documents/rail").status_code == 404
    assert client.get("/v1/documents/rail", params={"version": v}).json()["text"] == ARTICLE
    assert client.delete("/v1/documents/rail").status_code == 404
    # Posting it again brings it back.
    assert client.post("/v1/documents", json={"doc_id": "rail", "text": ARTICLE}).status_code in (200, 201)
    assert client.get("/v1/documents/rail").status_code == 200


def test_document_without_id_gets_a_content_id(client):
    a = client.post("/v1/documents", json={"text": ARTICLE}).json()
    b = client.post("/v1/documents", json={"text": ARTICLE})
    assert b.status_code == 200 and b.json()["doc_id"] == a["doc_id"]


def test_list_is_paginated(client):
    for i in range(5):
        client.post("/v1/documents", json={"doc_id": f"p{i}", "text": f"Item number {i} is here."})
    page = client.get("/v1/documents", params={"limit": 2, "offset": 0}).json()
    total = page["total"]
    assert total == 6 and len(page["documents"]) == 2 and page["next_offset"] == 2
    seen = []
    offset = 0
    while offset is not None:
        page = client.get("/v1/documents", params={"limit": 2, "offset": offset}).json()
        seen += [d["doc_id"] for d in page["documents"]]
        offset = page["next_offset"]
    assert len(seen) == total == len(set(seen))


def test_a_listing_carries_metadata_only_when_asked(client):
    """A listing stays small however large each document's metadata is (the playground
    lists on every load); ``?metadata=true`` adds it, and reading the document has it."""
    bulky = {"notes": "n" * 10_000, "source": "field survey"}
    for i in range(5):
        client.post("/v1/documents", json={"doc_id": f"m{i}", "title": f"M{i}", "text": ARTICLE, "metadata": bulky})
    r = client.get("/v1/documents", params={"limit": 10})
    assert r.status_code == 200 and len(r.content) < 5_000, len(r.content)
    listed = {d["doc_id"]: d for d in r.json()["documents"]}
    assert listed["m0"]["title"] == "M0" and listed["m0"]["metadata"] is None
    with_metadata = client.get("/v1/documents", params={"limit": 10, "metadata": "true"}).json()["documents"]
    assert {d["doc_id"]: d["metadata"] for d in with_metadata}["m3"] == bulky
    assert client.get("/v1/documents/m3").json()["metadata"] == bulky


def test_unicode_document_offsets_are_code_points(client):
    text = "Café ☕ opens at 7.\r\nThe owner, Zoë, bakes 😀 croissants daily.\nשלום עולם is written on the door."
    v = client.post("/v1/documents", json={"doc_id": "café/zoë", "text": text}).json()
    got = client.get("/v1/documents/café/zoë").json()
    assert got["text"] == text and got["doc_version"] == v["doc_version"]
    body = client.post("/v1/ask", json={"question": "Who bakes croissants?"}).json()
    assert body["status"] == "answered"
    assert any(c["doc_id"] == "café/zoë" and "Zoë" in c["quote"] for c in body["citations"])
    assert_citation_contract(client, body)


def test_unknown_document_and_version(client):
    r = client.get("/v1/documents/nope")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    seed = client.get("/v1/documents").json()["documents"][0]["doc_id"]
    r = client.get(f"/v1/documents/{seed}", params={"version": "0000000000000000"})
    assert r.status_code == 404 and "version" in r.json()["error"]["message"]


def test_a_span_is_the_text_between_its_offsets(client):
    doc = client.post("/v1/documents", json={"doc_id": "rail", "text": ARTICLE}).json()
    r = client.get("/v1/documents/rail", params={"version": doc["doc_version"], "start": 4, "end": 17})
    # Text sent as text has no pages (a PDF's span says its pages: test_documents_upload.py).
    assert r.json()["span"] == {"start": 4, "end": 17, "text": ARTICLE[4:17], "page": None, "end_page": None}
    r = client.get("/v1/documents/rail", params={"start": 9, "end": 3})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"


def test_identical_posts_at_once_create_one_version(client):
    """16 clients post the same new document at once: one 201 (created), fifteen 200, and
    one version with its sentences stored once."""
    body = {"doc_id": "rail", "title": "Rail", "text": ARTICLE}
    responses = run_at_once([lambda: client.post("/v1/documents", json=body)] * 16)
    assert sorted(r.status_code for r in responses) == [200] * 15 + [201]
    assert sorted(r.json()["created"] for r in responses) == [False] * 15 + [True]
    (version,) = {r.json()["doc_version"] for r in responses}
    doc = client.get("/v1/documents/rail").json()
    assert doc["doc_version"] == version and len(doc["sentences"]) == 3
    hits = client.post("/v1/search", json={"query": "Glacier Line passengers", "top_k": 20}).json()["hits"]
    rail = [h["sentence_id"] for h in hits if h["doc_id"] == "rail"]
    assert len(rail) == len(set(rail)) == 3
