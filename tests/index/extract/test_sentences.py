"""The extracted text is what ingest splits: every written sentence must come out of the
real sentence splitter as one sentence, whatever format carried it."""

from __future__ import annotations

import random

import pytest

from citeqa.index.extract import extract
from citeqa.index.sentences import split_sentences
from tests.index.extract.builders import Page, docx_document, fpdf_document, news_page, reportlab_document, sentences


@pytest.fixture(scope="module")
def written() -> list[list[str]]:
    """Paragraphs as lists of sentences."""
    rng = random.Random(11)
    return [sentences(rng, rng.randint(2, 5)) for _ in range(8)]


def _formats(paragraphs: list[str]) -> dict[str, bytes]:
    half = len(paragraphs) // 2
    pages = [Page("First part", tuple(paragraphs[:half])), Page("Second part", tuple(paragraphs[half:]))]
    return {
        "fpdf2 PDF": fpdf_document(pages),
        "reportlab PDF": reportlab_document(pages),
        "DOCX": docx_document("Report", [("h1", "First part")] + [("p", p) for p in paragraphs]),
        "Markdown": ("# Report\n\n" + "\n\n".join(paragraphs)).encode(),
        "HTML": news_page(tuple(paragraphs)).encode(),
    }


@pytest.mark.parametrize("fmt", ["fpdf2 PDF", "reportlab PDF", "DOCX", "Markdown", "HTML"])
def test_every_written_sentence_is_one_sentence_of_the_extracted_text(written, fmt):
    data = _formats([" ".join(p) for p in written])[fmt]
    got = extract(data, "text/markdown" if fmt == "Markdown" else None)
    found = [got.text[span.start:span.end] for span in split_sentences(got.text)]
    for paragraph in written:
        for sentence in paragraph:
            assert sentence in found
