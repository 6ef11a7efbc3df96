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


def test_hits_carry_their_pdf_page_and_a_link_into_the_original(client):
    from urllib.parse import unquote

    from tests.support.originals import BRIDGE_CANONICAL, GULLS_PAGE, REPORT_URL, upload_originals

    upload_originals(client)
    hits = client.post("/v1/search", json={"query": "lighthouse keeper counted gulls", "top_k": 5}).json()["hits"]
    top = hits[0]
    assert top["doc_id"] == "report" and "gulls" in top["text"]
    assert top["page"] == GULLS_PAGE and top["end_page"] is None
    assert top["link"] == f"{REPORT_URL}#page={GULLS_PAGE}"

    hits = client.post("/v1/search", json={"query": "council approved the new bridge", "top_k": 5}).json()["hits"]
    for h in hits:
        if h["doc_id"] == "bridge":
            base, directive = h["link"].split("#:~:text=")
            assert base == BRIDGE_CANONICAL and h["page"] is None
            assert h["text"].startswith(unquote(directive.split(",")[0]))
        else:  # the seed article: plain text with no URL
            assert h["page"] is None and h["end_page"] is None and h["link"] is None
    assert any(h["doc_id"] == "bridge" for h in hits)
