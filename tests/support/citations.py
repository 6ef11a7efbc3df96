"""The citation contract, checked over the API: every quote is the stored text at its offsets."""

from __future__ import annotations


def assert_citation_contract(client, body: dict) -> None:
    """Every citation's quote is the stored text at its offsets, fetched back over the API,
    and answer[answer_start:answer_end] is a non-empty part of the answer."""
    assert body["offset_unit"] == "codepoint"
    for c in body["citations"]:
        doc = client.get(f"/v1/documents/{c['doc_id']}", params={"version": c["doc_version"]})
        assert doc.status_code == 200, doc.text
        text = doc.json()["text"]
        assert text[c["start"]:c["end"]] == c["quote"]
        assert 0 <= c["answer_start"] < c["answer_end"] <= len(body["answer"])
        assert f"[{c['marker']}]" in body["answer"]
        assert c["sentence_id"] == f"{c['doc_id']}:{c['sentence_id'].rsplit(':', 1)[1]}"
    short = body.get("short_answer")
    if short:
        first = body["citations"][0]
        text = client.get(f"/v1/documents/{short['doc_id']}", params={"version": short["doc_version"]}).json()["text"]
        assert text[short["start"]:short["end"]] == short["text"]
        assert first["start"] <= short["start"] < short["end"] <= first["end"]
