"""The citation contract over every format, as a property: whatever sentences are written into
an HTML page, a PDF, a Markdown note, a DOCX or a text file, once the file is extracted
(``document_from_file``) and ingested into a real embedded store, every stored sentence is
its document's ``text[start:end]``, every written sentence reads whole in that text (no
markup, no word cut), and in a PDF every sentence lies on the page its words were put on."""

from __future__ import annotations

import itertools
import re
import string
from contextlib import closing

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from citeqa.index.extract import page_range
from citeqa.index.file_input import document_from_file
from citeqa.index.ingest import Ingestor
from tests.index.extract.builders import Page, docx_document, fpdf_document, news_page

pytestmark = pytest.mark.slow  # every example embeds and stores a document

# Words of ASCII letters and of letters beyond it. PDF core fonts (fpdf2's helvetica) encode
# Latin-1 only, so a PDF gets Latin-1 letters; the other formats get Greek, Cyrillic and CJK too.
LATIN1 = "éèüöñßøåçàâ"
WIDE = LATIN1 + "αβγδжщяłőčğış中文字"


def words(extra: str) -> st.SearchStrategy[str]:
    plain = st.text(alphabet=string.ascii_lowercase, min_size=2, max_size=9)
    accented = st.text(alphabet=string.ascii_lowercase + extra, min_size=2, max_size=9).filter(
        lambda w: any(ch in extra for ch in w))
    return st.one_of(plain, plain, accented)


def sentence(extra: str) -> st.SearchStrategy[str]:
    return st.lists(words(extra), min_size=4, max_size=12).map(lambda ws: " ".join(ws).capitalize() + ".")


def prose(extra: str, pages: int = 1) -> st.SearchStrategy[list[list[str]]]:
    """Pages of paragraphs, each paragraph a few sentences."""
    paragraph = st.lists(sentence(extra), min_size=1, max_size=4).map(" ".join)
    return st.lists(st.lists(paragraph, min_size=1, max_size=3), min_size=pages, max_size=pages)


# Ingest embeds: few examples, no deadline.
SETTINGS = settings(max_examples=10, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
# Different first and last lines on each page: a line that heads or foots most pages is a
# running head or foot, and is dropped (index/extract/pdf_layout.py).
PAGE_OPENERS = ("Alpha section begins here.", "Bravo section follows.", "Charlie part comes next.")
PAGE_CLOSERS = ("That ends the first.", "So much for two.", "Finally the third is done.")


@pytest.fixture(scope="module")
def ingestor(tmp_path_factory, embedder):
    from citeqa.index.embedded_store import EmbeddedStore

    with closing(EmbeddedStore(tmp_path_factory.mktemp("formats"), embedder.dimension)) as store:
        yield Ingestor(store, embedder)


_ids = itertools.count()


def _ingest(ingestor: Ingestor, data: bytes, filename: str):
    """Extract and store ``data``; the stored document and its stored sentences."""
    item = document_from_file(data, filename=filename, doc_id=f"doc-{next(_ids)}")
    result = ingestor.ingest(item)
    store = ingestor.store
    doc = store.document(result.doc_id, result.doc_version)
    assert doc is not None and doc.text == item.text
    sentences = store.sentences(result.doc_id, result.doc_version)
    assert sentences and len(sentences) == result.sentence_count
    for s in sentences:
        assert doc.text[s.start:s.end] == s.text  # the contract, read back from the store
    return doc, sentences


def _reads_whole(written: list[str], text: str) -> None:
    """Every written sentence is in the stored text as written, white space aside."""
    flat = " ".join(text.split())
    for paragraph in written:
        for s in re.findall(r"[^.]+\.", paragraph):
            assert s.strip() in flat, (s, text)


@SETTINGS
@given(prose(WIDE))
def test_plain_text(ingestor, pages):
    [paragraphs] = pages
    doc, _ = _ingest(ingestor, "\n\n".join(paragraphs).encode("utf-8"), "notes.txt")
    _reads_whole(paragraphs, doc.text)


@SETTINGS
@given(prose(WIDE))
def test_markdown(ingestor, pages):
    [paragraphs] = pages
    # Markup the stored text must not carry: a heading, emphasis, a link, a list.
    first, *rest = paragraphs
    head, _, tail = first.partition(" ")
    source = f"# Heading\n\n**{head}** {tail}\n\n" + "\n\n".join(
        f"- [{p}](https://example.org/{n})" if n % 2 else f"*{p}*" for n, p in enumerate(rest))
    doc, _ = _ingest(ingestor, source.encode("utf-8"), "notes.md")
    _reads_whole(paragraphs, doc.text)
    assert not set("#*[]()") & set(doc.text)


@SETTINGS
@given(prose(WIDE))
def test_docx(ingestor, pages):
    [paragraphs] = pages
    doc, _ = _ingest(ingestor, docx_document("Title", [("p", p) for p in paragraphs]), "notes.docx")
    _reads_whole(paragraphs, doc.text)


# An article of a few hundred characters at least: below trafilatura's minimum (250 by
# default) it falls back to the page's whole text, navigation and all.
article = prose(WIDE).filter(lambda pages: sum(len(p) for p in pages[0]) >= 400)


@SETTINGS
@given(article)
def test_html(ingestor, pages):
    [paragraphs] = pages
    # The generated article sits in a page of navigation, an ad, related links and a footer.
    doc, _ = _ingest(ingestor, news_page(tuple(paragraphs)).encode("utf-8"), "page.html")
    _reads_whole(paragraphs, doc.text)
    assert "Subscribe now" not in doc.text and "All rights reserved" not in doc.text


@SETTINGS
@given(prose(LATIN1, pages=3))
def test_pdf_sentences_are_on_the_page_they_were_written_on(ingestor, pages):
    written = [[opener, *paragraphs, closer]
               for opener, paragraphs, closer in zip(PAGE_OPENERS, pages, PAGE_CLOSERS, strict=True)]
    data = fpdf_document([Page(None, tuple(paragraphs)) for paragraphs in written])
    doc, sentences = _ingest(ingestor, data, "report.pdf")
    assert doc.source is not None and len(doc.source.pages) == 3
    _reads_whole([p for paragraphs in written for p in paragraphs], doc.text)
    on_page = [" ".join(" ".join(paragraphs).split()) for paragraphs in written]
    for s in sentences:
        span = page_range(doc.source.pages, s.start, s.end)
        assert span is not None and span[0] == span[1], (s, span)
        assert " ".join(s.text.split()) in on_page[span[0] - 1], (s.text, span)
