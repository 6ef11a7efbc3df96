"""Documents whose citations point back into an original, for the API and browser tests: a
three-page PDF with one fact on page 2, and a news web page (tests/index/extract/builders.py)."""

from __future__ import annotations

import json
from typing import Any

from tests.index.extract.builders import Page, fpdf_document, news_page

REPORT_PAGES = [
    Page("Northern Cliffs Trust", (
        "The trust manages three reserves along the coast. Volunteers repaired the visitor path in April.",)),
    Page(None, (
        "The lighthouse keeper counted 4,213 gulls on the northern cliff in June. "
        "Puffin numbers fell for the second year running.",)),
    Page(None, ("The trust thanks its members and donors for another year of support.",)),
]
GULLS_QUESTION = "How many gulls did the lighthouse keeper count?"
GULLS_FACT = "4,213"
GULLS_PAGE = 2
REPORT_URL = "https://trust.example.org/reports/2024.pdf"

BRIDGE_QUESTION = "When did the river city council approve the new bridge?"
BRIDGE_QUOTE = "The river city council approved the new bridge on Tuesday after eight months of debate."
# news_page()'s <link rel="canonical">, which the HTML extractor puts in the metadata.
BRIDGE_CANONICAL = "https://gazette.example.org/news/2024/03/council-approves-bridge"


def report_pdf() -> bytes:
    return fpdf_document(REPORT_PAGES, title="Northern Cliffs Trust annual report")


def bridge_page() -> bytes:
    return news_page().encode("utf-8")


def upload(client: Any, data: bytes, filename: str, media_type: str, **fields: Any) -> dict:
    """POST /v1/documents as multipart/form-data; ``metadata`` (a dict) is sent as JSON text."""
    form = {k: json.dumps(v) if k == "metadata" else v for k, v in fields.items()}
    r = client.post("/v1/documents", files={"file": (filename, data, media_type)}, data=form)
    assert r.status_code in (200, 201), r.text
    return r.json()


def upload_originals(client: Any) -> None:
    """The report (with a URL given, as a caller would) and the news page (its canonical URL
    comes from the page)."""
    upload(client, report_pdf(), "report.pdf", "application/pdf", doc_id="report", metadata={"url": REPORT_URL})
    upload(client, bridge_page(), "bridge.html", "text/html", doc_id="bridge")
