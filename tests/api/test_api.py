"""The HTTP API through the app factory (real model, FAISS and SQLite; TestClient)."""

from __future__ import annotations

import json

import pytest

from tests.support.citations import assert_citation_contract
from tests.support.corpus import TROOPS_QUESTION, UNSUPPORTED_QUESTION

ARTICLE = (
    "The Glacier Line opened in 1911. It carries about 40,000 passengers every winter.\n"
    "Its steepest section climbs 110 metres per kilometre near the Albula pass."
)


def error_of(response) -> dict:
    body = response.json()
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"]), body
    assert body["error"]["message"]
    return body["error"]


def test_health_and_ready(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["sentences"] > 0


def test_troops_question_cites_the_sentence(client):
    r = client.post("/v1/ask", json={"question": TROOPS_QUESTION})
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "answered"
    assert any("11,000 to 12,000" in c["quote"] for c in body["citations"])
    assert body["dropped_citations"] == 0
    assert {"embed", "retrieve", "total"} <= set(body["timings_ms"])
    assert_citation_contract(client, body)
    for c in body["citations"]:
        assert body["answer"][c["answer_start"]:c["answer_end"]] == c["quote"]


def test_unanswerable_question_is_unsupported(client):
    body = client.post("/v1/ask", json={"question": UNSUPPORTED_QUESTION}).json()
    assert body["status"] == "unsupported"
    assert body["citations"] == []


def test_curl_style_form_content_type_is_read_as_json(client):
    r = client.post(
        "/v1/ask", content=json.dumps({"question": TROOPS_QUESTION}),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200 and r.json()["status"] == "answered"


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


def test_search_hits_are_exact_spans(client):
    body = client.post("/v1/search", json={"query": "ambassador to Pyongyang", "top_k": 3}).json()
    assert len(body["hits"]) == 3
    scores = [h["score"] for h in body["hits"]]
    assert scores == sorted(scores, reverse=True)
    for h in body["hits"]:
        text = client.get(f"/v1/documents/{h['doc_id']}", params={"version": h["doc_version"]}).json()["text"]
        assert text[h["start"]:h["end"]] == h["text"]


def test_unicode_document_offsets_are_code_points(client):
    text = "Café ☕ opens at 7.\r\nThe owner, Zoë, bakes 😀 croissants daily.\nשלום עולם is written on the door."
    v = client.post("/v1/documents", json={"doc_id": "café/zoë", "text": text}).json()
    got = client.get("/v1/documents/café/zoë").json()
    assert got["text"] == text and got["doc_version"] == v["doc_version"]
    body = client.post("/v1/ask", json={"question": "Who bakes croissants?"}).json()
    assert body["status"] == "answered"
    assert any(c["doc_id"] == "café/zoë" and "Zoë" in c["quote"] for c in body["citations"])
    assert_citation_contract(client, body)


@pytest.mark.parametrize(
    "path,payload,status",
    [
        ("/v1/documents", {"text": ""}, 422),
        ("/v1/documents", {"text": "   \n\t "}, 422),
        ("/v1/documents", {"title": "no text"}, 422),
        ("/v1/documents", {"text": 42}, 422),
        ("/v1/documents", {"text": "ok.", "doc_id": ""}, 422),
        ("/v1/documents", {"text": "ok.", "doc_id": "a\nb"}, 422),
        ("/v1/documents", {"text": "nul\u0000inside"}, 422),
        ("/v1/documents", {"text": "ok.", "metadata": "not an object"}, 422),
        ("/v1/documents", {"text": "ok.", "unknown": 1}, 422),
        ("/v1/documents", [1, 2, 3], 422),
        ("/v1/ask", {}, 422),
        ("/v1/ask", {"question": ""}, 422),
        ("/v1/ask", {"question": "   "}, 422),
        ("/v1/ask", {"question": "x", "top_k": 0}, 422),
        ("/v1/ask", {"question": "x", "top_k": -3}, 422),
        ("/v1/ask", {"question": "x", "top_k": 10**9}, 422),
        ("/v1/ask", {"question": "x", "top_k": "five"}, 422),
        ("/v1/ask", {"question": "x" * 5000}, 422),
        ("/v1/search", {"query": ""}, 422),
        ("/v1/search", {"query": "x", "top_k": 0}, 422),
    ],
)
def test_bad_input_gets_a_clear_4xx(client, path, payload, status):
    r = client.post(path, json=payload)
    assert r.status_code == status, r.text
    error_of(r)


def test_invalid_json_and_wrong_methods(client):
    r = client.post("/v1/ask", content=b'{"question": ', headers={"content-type": "application/json"})
    assert r.status_code == 422 and "JSON" in error_of(r)["message"]
    r = client.post("/v1/ask", content=b"\xff\xfe not utf-8", headers={"content-type": "application/json"})
    assert r.status_code == 422
    error_of(r)
    assert client.get("/v1/ask").status_code == 405
    assert client.get("/v1/nothing-here").status_code == 404
    error_of(client.get("/v1/nothing-here"))


def test_unknown_document_and_version(client):
    assert error_of(client.get("/v1/documents/nope"))["code"] == "not_found"
    seed = client.get("/v1/documents").json()["documents"][0]["doc_id"]
    r = client.get(f"/v1/documents/{seed}", params={"version": "0000000000000000"})
    assert r.status_code == 404 and "version" in error_of(r)["message"]


def test_oversized_body_is_413(settings, embedder):
    from fastapi.testclient import TestClient

    from citeqa.api.app import create_app

    small = settings.model_copy(update={"max_body_bytes": 2048})
    with TestClient(create_app(small, embedder=embedder)) as c:
        r = c.post("/v1/documents", json={"text": "word " * 1000})
        assert r.status_code == 413
        assert error_of(r)["code"] == "payload_too_large"
        assert c.post("/v1/documents", json={"text": "Small enough."}).status_code == 201


def test_openapi_is_served(client):
    spec = client.get("/openapi.json").json()
    assert {"/v1/ask", "/v1/search", "/v1/documents"} <= set(spec["paths"])
