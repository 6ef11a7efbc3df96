"""POST /v1/ask (api/routes/ask.py) through the app factory: answers cite the stored text,
unanswerable questions are unsupported, and each answer is counted in /metrics."""

from __future__ import annotations

from tests.support.citations import assert_citation_contract
from tests.support.corpus import TROOPS_QUESTION, UNSUPPORTED_QUESTION


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


def test_each_answer_is_counted_by_generator_and_status(client):
    client.post("/v1/ask", json={"question": TROOPS_QUESTION})
    client.post("/v1/ask", json={"question": UNSUPPORTED_QUESTION})
    text = client.get("/metrics").text
    assert 'citeqa_answers_total{generator="extractive",status="answered"} 1.0' in text
    assert 'citeqa_answers_total{generator="extractive",status="unsupported"} 1.0' in text


def test_citations_carry_the_pdf_page_and_a_link_into_the_original(client):
    from urllib.parse import unquote

    from tests.support.originals import (
        BRIDGE_CANONICAL,
        BRIDGE_QUESTION,
        BRIDGE_QUOTE,
        GULLS_FACT,
        GULLS_PAGE,
        GULLS_QUESTION,
        REPORT_URL,
        upload_originals,
    )

    upload_originals(client)
    body = client.post("/v1/ask", json={"question": GULLS_QUESTION}).json()
    assert body["status"] == "answered" and GULLS_FACT in body["answer"], body
    assert_citation_contract(client, body)
    cited = next(c for c in body["citations"] if GULLS_FACT in c["quote"])
    assert cited["doc_id"] == "report" and cited["page"] == GULLS_PAGE and cited["end_page"] is None
    assert cited["link"] == f"{REPORT_URL}#page={GULLS_PAGE}"

    body = client.post("/v1/ask", json={"question": BRIDGE_QUESTION}).json()
    assert_citation_contract(client, body)
    cited = next(c for c in body["citations"] if c["quote"] == BRIDGE_QUOTE)
    assert cited["page"] is None
    base, directive = cited["link"].split("#:~:text=")
    head, tail = (unquote(part) for part in directive.split(","))
    assert base == BRIDGE_CANONICAL and BRIDGE_QUOTE.startswith(head) and BRIDGE_QUOTE.endswith(tail + ".")
