"""POST /v1/search (api/routes/search.py): ranked hits whose offsets are exact spans."""

from __future__ import annotations


def test_search_hits_are_exact_spans(client):
    body = client.post("/v1/search", json={"query": "ambassador to Pyongyang", "top_k": 3}).json()
    assert len(body["hits"]) == 3
    scores = [h["score"] for h in body["hits"]]
    assert scores == sorted(scores, reverse=True)
    for h in body["hits"]:
        text = client.get(f"/v1/documents/{h['doc_id']}", params={"version": h["doc_version"]}).json()["text"]
        assert text[h["start"]:h["end"]] == h["text"]


def test_top_k_is_capped_by_the_settings(settings, embedder):
    from fastapi.testclient import TestClient

    from citeqa.api.app import create_app

    capped = settings.model_copy(update={"max_top_k": 2, "default_top_k": 1})
    with TestClient(create_app(capped, embedder=embedder)) as c:
        assert len(c.post("/v1/search", json={"query": "troops"}).json()["hits"]) == 1
        r = c.post("/v1/search", json={"query": "troops", "top_k": 3})
        assert r.status_code == 422 and r.json()["error"]["message"] == "top_k must be at most 2"
