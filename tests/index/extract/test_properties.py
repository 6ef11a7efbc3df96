"""Properties over generated prose: whatever paragraphs are written into a PDF, a DOCX or a
Markdown file, extraction gives back every word in order and every sentence on one line."""

from __future__ import annotations

import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from citeqa.index.extract import extract
from tests.index.extract.builders import Page, docx_document, fpdf_document

word = st.text(alphabet=string.ascii_letters, min_size=1, max_size=12)
sentence = st.lists(word, min_size=3, max_size=15).map(lambda words: " ".join(words) + ".")
paragraph = st.lists(sentence, min_size=1, max_size=4).map(" ".join)
# At most a page of A4 in 11 pt (the generated PDF does not break pages).
document = st.lists(paragraph, min_size=1, max_size=6).filter(lambda ps: sum(len(p) for p in ps) < 2_500)

# Paragraphs of two lines or more: a page of one-line paragraphs gives the PDF reader no
# line of a paragraph to measure the leading on, and reads as one paragraph (every word
# and sentence still in order: test_pdf_gives_back_every_word_in_order).
# (Each at least 6 x 8 x 5 = 240 characters, the document at most 3 x 6 x 10 x 9 = 1,620.)
long_sentence = st.lists(st.text(alphabet=string.ascii_letters, min_size=4, max_size=8), min_size=8, max_size=10).map(
    lambda words: " ".join(words) + ".")
long_document = st.lists(st.lists(long_sentence, min_size=6, max_size=6).map(" ".join), min_size=1, max_size=3)

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _check(paragraphs: list[str], text: str) -> None:
    assert text.split() == " ".join(paragraphs).split()  # every word, in order, nothing added
    for p in paragraphs:
        for s in p.split(". "):
            assert s.rstrip(".") in text  # no sentence is cut by a line break or a lost space


@SETTINGS
@given(document)
def test_pdf_gives_back_every_word_in_order(paragraphs):
    got = extract(fpdf_document([Page(None, tuple(paragraphs))]))
    _check(paragraphs, got.text)
    assert got.pages == ((0, len(got.text)),)


@SETTINGS
@given(long_document)
def test_pdf_gives_back_the_paragraphs(paragraphs):
    got = extract(fpdf_document([Page(None, tuple(paragraphs))]))
    assert got.text == "\n\n".join(paragraphs)


@SETTINGS
@given(document)
def test_docx_gives_back_the_paragraphs(paragraphs):
    got = extract(docx_document(None, [("p", p) for p in paragraphs]))
    _check(paragraphs, got.text)
    assert got.text == "\n\n".join(paragraphs)


@SETTINGS
@given(document)
def test_markdown_gives_back_the_paragraphs(paragraphs):
    got = extract("\n\n".join(paragraphs).encode(), "text/markdown")
    _check(paragraphs, got.text)
    assert got.text == "\n\n".join(paragraphs)
