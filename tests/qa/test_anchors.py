"""Anchors back into the original (qa/anchors.py): PDF pages of a span, and links with a
text fragment (#:~:text=) that a browser scrolls to.

The text-fragment checks decode what was built and search it the way a browser does
(``_browser_range``: case-insensitive, whitespace collapsed, whole words), written here
independently of the module's own search."""

from __future__ import annotations

import random
import re
import string
from dataclasses import replace
from urllib.parse import unquote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from citeqa.index.extract import extract
from citeqa.index.types import Document, Source
from citeqa.qa.anchors import (
    MAX_PART_WORDS,
    SHORT_QUOTE_WORDS,
    Anchor,
    Anchors,
    anchor,
    encode,
    source_url,
    text_directive,
)
from tests.index.extract.builders import NEWS_ARTICLE, Page, fpdf_document, paragraphs

URL = "https://news.example.org/2024/bridge"
UNRESERVED = re.compile(r"(?:[A-Za-z0-9._~]|%[0-9A-F]{2})*")


def _doc(text: str, url: str | None = URL, pages: tuple[tuple[int, int], ...] = ()) -> Document:
    source = Source("application/pdf", "a.pdf", 1, "0" * 64, pages) if pages else None
    return Document("d", "v1", text, metadata={"url": url} if url else {}, source=source)


def _parts(directive: str) -> list[str]:
    """The decoded textStart (and textEnd) of a directive, as a browser parses it."""
    raw = directive.split(",")
    assert 1 <= len(raw) <= 2, directive
    assert all(UNRESERVED.fullmatch(p) for p in raw), directive  # nothing left unencoded
    decoded = [unquote(p) for p in raw]
    # A raw "-" at either end would make a part a prefix or suffix instead.
    assert all(p and not p.startswith("-") and not p.endswith("-") for p in raw), directive
    return decoded


def _browser_range(text: str, start_text: str, end_text: str | None = None) -> tuple[int, int] | None:
    """Where a browser's text search lands: the first whole-word, case-insensitive match of
    ``start_text`` (whitespace in the page collapsed), then ``end_text`` after it."""
    spans = [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]
    flat = " ".join(text[a:b] for a, b in spans).lower()
    where = []  # flat offset -> text offset
    for i, (a, b) in enumerate(spans):
        where.extend(range(a, b))
        if i + 1 < len(spans):
            where.append(b)

    def find(needle: str, frm: int) -> tuple[int, int] | None:
        needle = needle.lower()
        i = flat.find(needle, frm)
        while i >= 0:
            before = flat[i - 1] if i else " "
            after = flat[i + len(needle)] if i + len(needle) < len(flat) else " "
            if not before.isalnum() and before != "_" and not after.isalnum() and after != "_":
                return i, i + len(needle)
            i = flat.find(needle, i + 1)
        return None

    first = find(start_text, 0)
    if first is None:
        return None
    last = find(end_text, first[1]) if end_text is not None else first
    if last is None:
        return None
    return where[first[0]], where[last[1] - 1] + 1


def _link_directive(link: str) -> str:
    base, fragment = link.split("#:~:text=")
    assert base == URL
    return fragment


# ---- pages -------------------------------------------------------------------------------

def test_page_is_where_a_span_starts_and_end_page_only_when_it_crosses_a_page():
    text = "one two three\n\nfour five six\n\nseven"
    pages = ((0, 13), (15, 28), (30, 35))
    doc = _doc(text, url=None, pages=pages)
    assert anchor(doc, 4, 13) == Anchor(page=1)  # within page 1: end_page stays None
    assert anchor(doc, 15, 19) == Anchor(page=2)
    assert anchor(doc, 8, 19) == Anchor(page=1, end_page=2)
    assert anchor(doc, 8, 35) == Anchor(page=1, end_page=3)
    assert anchor(doc, 13, 15).page == 2  # the blank line joining two pages belongs to the next
    assert anchor(_doc(text, url=None), 0, 3) == Anchor()  # no pages: no page


def test_every_sentence_of_a_generated_pdf_gets_the_page_it_was_written_on():
    rng = random.Random(3)
    written = [Page(f"Part {n}", tuple(paragraphs(rng, 2))) for n in (1, 2, 3)]
    got = extract(fpdf_document(written))
    doc = _doc(got.text, url=None, pages=got.pages)
    for number, page in enumerate(written, start=1):
        for paragraph in page.paragraphs:
            for sentence in re.findall(r"[^.]+\.", paragraph):
                start = got.text.index(sentence.strip())
                assert anchor(doc, start, start + len(sentence.strip())) == Anchor(page=number)


def test_a_pdf_with_a_url_links_to_the_page():
    doc = _doc("alpha beta\n\ngamma delta", url=URL + "#top", pages=((0, 10), (12, 23)))
    assert anchor(doc, 12, 17) == Anchor(page=2, link=URL + "#page=2")


# ---- the URL -----------------------------------------------------------------------------

@pytest.mark.parametrize("url, expected", [
    ("https://news.example.org/a?id=3&x=y#comments", "https://news.example.org/a?id=3&x=y"),
    ("  HTTP://Example.org/path  ", "http://Example.org/path"),
    ("https://example.org/a#:~:text=old", "https://example.org/a"),
    ("ftp://example.org/a", None), ("javascript:alert(1)", None), ("data:text/html,<b>x</b>", None),
    ("file:///etc/passwd", None), ("/relative/path", None), ("example.org/a", None), ("https://", None),
    ("https://exa mple.org/", None), ("https://[::1/", None), ("", None), (42, None), (None, None),
])
def test_only_absolute_http_urls_are_linked_without_their_fragment(url, expected):
    assert source_url(url) == expected


def test_a_document_without_a_usable_url_has_no_link():
    text = "The council approved the bridge."
    assert anchor(_doc(text, url=None), 0, len(text)).link is None
    assert anchor(_doc(text, url="mailto:a@example.org"), 0, len(text)).link is None


# ---- the text fragment -------------------------------------------------------------------

def test_a_short_quote_is_the_whole_directive_without_its_end_punctuation():
    text = "Intro. “The bridge, finally, opens - on Tuesday & Friday!” Outro."
    quote = "“The bridge, finally, opens - on Tuesday & Friday!”"
    start = text.index(quote)
    link = anchor(_doc(text), start, start + len(quote)).link
    directive = _link_directive(link)
    assert directive == "The%20bridge%2C%20finally%2C%20opens%20%2D%20on%20Tuesday%20%26%20Friday"
    assert _parts(directive) == ["The bridge, finally, opens - on Tuesday & Friday"]


def test_a_long_quote_is_its_first_and_last_words():
    text = "\n\n".join(NEWS_ARTICLE)
    quote = NEWS_ARTICLE[1].split(". ")[0] + "."
    start = text.index(quote)
    head, tail = _parts(text_directive(text, start, start + len(quote)))
    assert quote.startswith(head) and quote.rstrip(".").endswith(tail)
    assert len(head.split()) < len(quote.split()) // 2 and len(tail.split()) < len(quote.split()) // 2
    assert _browser_range(text, head, tail) == (start, start + len(quote) - 1)


def test_the_start_grows_past_words_an_earlier_sentence_shares():
    earlier = "The council said on Monday that the old bridge will close."
    quote = "The council said on Tuesday that the new bridge of steel will open next spring after two years."
    text = f"{earlier} {quote}"
    start = text.index(quote)
    head, tail = _parts(text_directive(text, start, len(text)))
    assert head == "The council said on Tuesday"  # four words would find the earlier sentence
    assert _browser_range(text, head, tail) == (start, len(text) - 1)


def test_the_end_grows_past_words_repeated_inside_the_quote():
    quote = ("Engineers will test the new bridge in May and the council will inspect the new bridge "
             "in June before it opens to the new bridge traffic.")
    head, tail = _parts(text_directive(quote, 0, len(quote)))
    assert _browser_range(quote, head, tail) == (0, len(quote) - 1)
    assert tail.endswith("new bridge traffic") and len(tail.split()) > 3


def test_no_part_crosses_a_line_break_the_extractor_put_between_blocks():
    text = "Council approves new river bridge\n\nThe river city council approved the new bridge on Tuesday."
    head, tail = _parts(text_directive(text, 0, len(text)))
    assert head == "Council approves new river" and tail == "new bridge on Tuesday"
    assert _browser_range(text, head, tail) == (0, len(text) - 1)


@pytest.mark.parametrize("quote", ["...", "—", " \n ", "“”"])
def test_a_span_without_words_has_no_directive(quote):
    assert text_directive(quote, 0, len(quote)) is None
    assert anchor(_doc(quote), 0, len(quote)).link == URL


# Words with the directive's syntax characters, percent signs, quotes, non-ASCII letters
# (İ lengthens when lower-cased), an underscore and emoji in them; separated by spaces, tabs and line breaks.
_WORDS = st.text(alphabet=string.ascii_letters + "-,&%#'’“”.!?:;_()éßøЖİ中🦜", min_size=1, max_size=9)
_SPACE = st.sampled_from([" ", " ", " ", "  ", "\t", "\n", "\n\n"])


@st.composite
def _text_and_span(draw) -> tuple[str, int, int]:
    words = draw(st.lists(_WORDS, min_size=1, max_size=40))
    text = ""
    starts = []
    for i, word in enumerate(words):
        if i:
            text += draw(_SPACE)
        starts.append(len(text))
        text += word
    a = draw(st.integers(0, len(words) - 1))
    b = draw(st.integers(a, len(words) - 1))
    return text, starts[a], starts[b] + len(words[b])


def _blocks(quote: str) -> list[list[str]]:
    return [line.split() for line in quote.split("\n") if re.search(r"[^\W_]", line)]


def _bare(words: list[str]) -> str:
    return re.sub(r"^[\W_]+|[\W_]+$", "", " ".join(words))


@settings(max_examples=400, deadline=None)
@given(_text_and_span())
def test_decoding_the_directive_gives_back_the_quotes_first_and_last_words(case):
    text, start, end = case
    quote = text[start:end]
    directive = text_directive(text, start, end)
    blocks = _blocks(quote)
    if not blocks:
        assert directive is None
        return
    parts = _parts(directive)
    first, last = blocks[0], blocks[-1]
    if len(parts) == 1:
        assert parts[0] == _bare(first) and len(blocks) == 1 and len(first) <= SHORT_QUOTE_WORDS
        return
    head, tail = parts
    n = next(k for k in range(1, len(first) + 1) if _bare(first[:k]) == head)
    m = next(k for k in range(1, len(last) + 1) if _bare(last[-k:]) == tail)
    if len(blocks) == 1:
        assert n + m <= len(first)  # the two parts never overlap
    assert n <= MAX_PART_WORDS and m <= MAX_PART_WORDS


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from("the The council Council bridge new old river said on Tuesday vote steel".split()),
                min_size=12, max_size=60), st.data())
def test_a_browser_lands_on_the_quote_unless_its_words_repeat_beyond_the_longest_part(words, data):
    """Sentences from a small vocabulary repeat their openings: the start grows until the
    browser's first match is the quote, or until it may grow no more."""
    a = data.draw(st.integers(0, len(words) - 1))
    b = data.draw(st.integers(a, len(words) - 1))
    text = " ".join(words)
    start = len(" ".join(words[:a])) + (1 if a else 0)
    end = start + len(" ".join(words[a:b + 1]))
    parts = _parts(text_directive(text, start, end))
    found = _browser_range(text, *parts)
    assert found is not None
    quote_words = b - a + 1
    if found[0] != start:  # an earlier match: the start could grow no more
        head_words = len(parts[0].split())
        assert head_words == quote_words or head_words == min(MAX_PART_WORDS, quote_words // 2)
    elif found[1] != end:  # the right start, an earlier end: the end could grow no more
        assert len(parts[1].split()) == min(MAX_PART_WORDS, quote_words // 2)


def test_encode_leaves_only_unreserved_characters_and_escapes():
    raw = "a-b,c&d e%f#g~h.i_j ’ 🦜"
    encoded = encode(raw)
    assert UNRESERVED.fullmatch(encoded) and unquote(encoded) == raw
    assert "-" not in encoded and "," not in encoded and "&" not in encoded


class _CountingStore:
    """A corpus of versions that records which reads anchors make: whole versions
    (``document``) or their title, metadata and source alone (``document_info``)."""

    def __init__(self, *docs: Document):
        self.docs = {(d.doc_id, d.version): d for d in docs}
        self.reads: list[tuple[str, str, str | None]] = []

    def document(self, doc_id, version=None):
        self.reads.append(("text", doc_id, version))
        return self.docs.get((doc_id, version))

    def document_info(self, doc_id, version):
        self.reads.append(("info", doc_id, version))
        found = self.docs.get((doc_id, version))
        return replace(found, text="") if found is not None else None


def test_anchors_read_each_version_once():
    store = _CountingStore(_doc("The council approved the bridge. It opens in May."))
    anchors = Anchors(store)  # type: ignore[arg-type]
    assert anchors.of("d", "v1", 0, 32).link == URL + "#:~:text=The%20council%20approved%20the%20bridge"
    assert anchors.of("d", "v1", 33, 49).link == URL + "#:~:text=It%20opens%20in%20May"
    assert anchors.of("gone", "v1", 0, 5) == Anchor()
    assert anchors.of("gone", "v1", 0, 5) == Anchor()
    assert store.reads == [("info", "d", "v1"), ("text", "d", "v1"), ("info", "gone", "v1")]


def test_anchors_read_a_text_only_for_a_link_that_needs_it():
    long_quote = "The council approved the bridge over the river after a vote of nine to two on Monday."
    text = f"{long_quote} It opens in May."
    pdf = replace(_doc(text, pages=((0, len(long_quote)), (len(long_quote), len(text)))), doc_id="pdf")
    plain = replace(_doc(text, url=None), doc_id="plain")
    store = _CountingStore(_doc(text), pdf, plain)
    anchors = Anchors(store)  # type: ignore[arg-type]
    # A PDF's page and link, a document without a URL, and a short quote the caller gives:
    # the version's source and metadata are all they need.
    assert anchors.of("pdf", "v1", 0, len(long_quote)) == anchor(pdf, 0, len(long_quote))
    assert anchors.of("pdf", "v1", 0, len(long_quote)).link == URL + "#page=1"
    assert anchors.of("plain", "v1", 0, len(long_quote)) == Anchor()
    short = (len(long_quote) + 1, len(text))
    assert anchors.of("d", "v1", *short, quote=text[short[0]:short[1]]) == anchor(_doc(text), *short)
    assert [kind for kind, _, _ in store.reads] == ["info", "info", "info"]
    # A long quote's directive must be its first match in the text: the text is read, once.
    assert anchors.of("d", "v1", 0, len(long_quote), quote=long_quote) == anchor(_doc(text), 0, len(long_quote))
    assert anchors.of("d", "v1", 0, len(long_quote)) == anchor(_doc(text), 0, len(long_quote))
    assert [kind for kind, _, _ in store.reads] == ["info", "info", "info", "text"]


def test_anchors_use_a_version_read_whole_without_reading_it_again():
    store = _CountingStore(_doc("The council approved the bridge. It opens in May."))
    anchors = Anchors(store)  # type: ignore[arg-type]
    assert anchors.document("d", "v1") is not None  # as the verifier reads a quote
    assert anchors.of("d", "v1", 0, 32) == anchor(_doc("The council approved the bridge. It opens in May."), 0, 32)
    assert store.reads == [("text", "d", "v1")]
