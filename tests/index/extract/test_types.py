"""Page lookups on extracted text: which 1-based page(s) an offset or a span is on."""

from __future__ import annotations

from citeqa.index.extract.pdf_layout import join_pages
from citeqa.index.extract.types import Extracted, page_at, page_range


def _paged(*pages: str) -> Extracted:
    text, spans = join_pages(list(pages))
    return Extracted(text=text, media_type="application/pdf", pages=spans)


def test_every_offset_maps_to_the_page_it_was_written_on():
    doc = _paged("first page.", "second page here.", "third.")
    for number, (start, end) in enumerate(doc.pages, start=1):
        assert all(doc.page_of(offset) == number for offset in range(start, end))


def test_the_blank_line_between_pages_belongs_to_the_next_page_and_past_the_end_is_none():
    doc = _paged("one", "two")
    assert doc.text == "one\n\ntwo"
    assert doc.page_of(3) == doc.page_of(4) == 2
    assert doc.page_of(len(doc.text)) is None


def test_pages_without_text_are_skipped():
    doc = _paged("one", "", "", "four")
    assert doc.pages[1][0] == doc.pages[1][1]
    assert doc.page_of(doc.text.index("four")) == 4
    assert doc.page_of(3) == 4  # the separator before page 4


def test_a_span_reports_its_first_and_last_page():
    doc = _paged("alpha beta", "gamma delta")
    start = doc.text.index("beta")
    end = doc.text.index("gamma") + len("gamma")
    assert doc.pages_of(start, end) == (1, 2)
    assert doc.pages_of(start, start + 4) == (1, 1)
    assert doc.pages_of(doc.text.index("delta"), len(doc.text)) == (2, 2)


def test_formats_without_pages_have_no_page():
    doc = Extracted(text="plain words", media_type="text/plain")
    assert doc.page_of(0) is None and doc.pages_of(0, 5) is None


def test_stored_page_spans_answer_without_the_extracted_object():
    doc = _paged("alpha beta", "", "gamma delta")
    stored = tuple((start, end) for start, end in doc.pages)  # e.g. read back from the store
    offset = doc.text.index("delta")
    assert page_at(stored, offset) == doc.page_of(offset) == 3
    assert page_range(stored, 0, offset + 5) == (1, 3)
