"""Extraction of real files no one here wrote (tests/index/extract/data/README.md says where
each comes from and its license): the text reads as prose, a known sentence whole, on the
page it is printed on; a real scan without a text layer is refused with the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from citeqa.index.extract import ExtractionError, extract, page_range
from citeqa.index.sentences import split_sentences

DATA = Path(__file__).parent / "data"

# Printed on page 1 of DD Form 293 in one paragraph over several lines of a form's box.
BURDEN = ("The public reporting burden for this collection of information is estimated to average 30 minutes "
          "per response, including the time for reviewing instructions, searching existing data sources, "
          "gathering and maintaining the data needed, and completing and reviewing the collection of information.")
# Page 4, in the instructions.
EXAMPLE = ("My discharge was inequitable because it was based on one isolated incident in 28 months "
           "of service with no other adverse action.")


def _sentence_on_page(text: str, pages, sentence: str) -> tuple[int, int] | None:
    """The pages of ``sentence`` if the splitter gives it whole (not cut or merged), else None."""
    start = text.index(sentence)
    spans = [(s.start, s.end) for s in split_sentences(text)]
    assert any(a <= start and start + len(sentence) <= b for a, b in spans)
    return page_range(pages, start, start + len(sentence))


def test_a_us_government_form_reads_as_prose_on_its_pages():
    got = extract((DATA / "pikepdf-dd-form-293.pdf").read_bytes())
    assert got.media_type == "application/pdf" and len(got.pages) == 4
    assert got.metadata.get("author") == "DoD Component"
    # Lines wrapped inside the form's boxes are joined into whole sentences.
    assert _sentence_on_page(got.text, got.pages, BURDEN) == (1, 1)
    assert _sentence_on_page(got.text, got.pages, EXAMPLE) == (4, 4)


def test_a_real_scan_without_a_text_layer_is_refused_with_the_reason():
    with pytest.raises(ExtractionError, match="no text layer") as refused:
        extract((DATA / "pikepdf-congress-gray-scan.pdf").read_bytes())
    assert refused.value.status == 422


def test_a_real_web_page_gives_its_text_and_metadata():
    got = extract((DATA / "trafilatura-moby-dick.html").read_bytes())
    assert got.media_type == "text/html"
    assert got.metadata.get("author") == "Herman Melville"
    sentence = "Nevertheless, this old man's was a patient hammer wielded by a patient arm."
    assert sentence in got.text
    # The paragraph's source lines (indented, wrapped) read as one paragraph; the link keeps its text.
    assert "This is a test paragraph with a link." in got.text
    assert "<" not in got.text and "testlink.html" not in got.text
