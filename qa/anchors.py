"""Anchors back into the original: the PDF page a span is on, and a link that opens the
document's own page at the quote.

- ``page``: the 1-based page of a paged source (PDF) on which the span starts;
  ``end_page`` the page it ends on *only when that is another page* (None on one page), so
  ``end_page is not None`` means "crosses a page". Documents without pages have neither.
- ``link``: only for a document whose metadata has ``url`` (the HTML extractor puts the
  page's canonical URL there; a caller's metadata ``url`` wins over it), and only when that
  URL is http(s). The URL loses any fragment of its own and gets:
  - for a PDF, ``#page=N`` (the PDF open parameter Chromium's, Firefox's and Acrobat's
    viewers follow; their viewers do not scroll to text fragments);
  - otherwise a text fragment, ``#:~:text=textStart[,textEnd]`` (WICG Scroll To Text
    Fragment, https://wicg.github.io/scroll-to-text-fragment/): a short quote whole, a long
    one as its first and last few words. The browser matches the page's *rendered* text
    while the quote comes from the extractor, so the directive is built from whole words:
    whitespace becomes one space (browsers match case-insensitively and ignore how
    whitespace is laid out, but not punctuation), punctuation at either end is left out
    (a match must begin and end on a word boundary, and quotes or a full stop may be
    rendered differently), and neither part crosses a line break, which in extracted text
    separates blocks (paragraphs, headings, list items): a single text match cannot cross
    a block boundary, a start,end range can. Every character that is not unreserved is
    percent-encoded, ``-``, ``,`` and ``&`` too, since they are the directive's syntax.
    Start and end grow beyond a few words until they are the first match in the stored
    text, so the browser does not stop at an earlier sentence with the same opening words
    (boilerplate the extractor dropped can still contain them: the link is best effort).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable
from urllib.parse import quote, urlsplit, urlunsplit

from citeqa.index.pages import page_range
from citeqa.index.types import Corpus, Document

# A quote of at most this many words (on one line) is the whole directive.
SHORT_QUOTE_WORDS = 10
# A longer one: textStart and textEnd start with this many words each ...
FEW_WORDS = 4
# ... and grow up to this many to be the first match in the text.
MAX_PART_WORDS = 12
_EDGE = re.compile(r"^[\W_]+|[\W_]+$")
_TRAILING = re.compile(r"[\W_]+$")
_WORD_CHAR = re.compile(r"[^\W_]")


@dataclass(frozen=True)
class Anchor:
    page: int | None = None
    end_page: int | None = None
    link: str | None = None


def anchor(doc: Document, start: int, end: int) -> Anchor:
    """Where ``doc.text[start:end]`` is in the original (see the module's docstring)."""
    return _anchor(doc, start, end, None, lambda: doc.text)


def _anchor(doc: Document, start: int, end: int, quote: str | None, text: Callable[[], str]) -> Anchor:
    """``anchor`` of a version whose ``text`` is read only if the link needs it (a text
    directive that is not the ``quote`` alone); ``quote``: ``text()[start:end]`` if known."""
    page = end_page = None
    pages = doc.source.pages if doc.source is not None else ()
    if pages:
        found = page_range(pages, start, end)
        if found is not None:
            page, last = found
            end_page = last if last != page else None
    base = source_url(doc.metadata.get("url"))
    link = None
    if base is not None:
        if pages:
            link = f"{base}#page={page}" if page is not None else base
        else:
            directive = _directive(text()[start:end] if quote is None else quote, start, end, text)
            link = f"{base}#:~:text={directive}" if directive else base
    return Anchor(page, end_page, link)


def source_url(value: object) -> str | None:
    """``value`` as an absolute http(s) URL without its fragment, or None."""
    if not isinstance(value, str):
        return None
    url = value.strip()
    if not url or any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        return None
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:  # e.g. a malformed IPv6 host or port
        return None
    if parts.scheme.lower() not in ("http", "https") or not host:
        return None
    return urlunsplit((parts.scheme.lower(), parts.netloc, parts.path, parts.query, ""))


def text_directive(text: str, start: int, end: int) -> str | None:
    """The value of ``#:~:text=`` that finds ``text[start:end]``: ``textStart`` alone, or
    ``textStart,textEnd``, percent-encoded; None when the span has no word."""
    return _directive(text[start:end], start, end, lambda: text)


def _directive(quote: str, start: int, end: int, whole: Callable[[], str]) -> str | None:
    """``text_directive`` of the span ``quote`` (``whole()[start:end]``): a short one is the
    directive alone, and only a longer one reads the whole text (to be its first match)."""
    blocks = [words for line in quote.split("\n")
              if (words := line.split()) and any(_WORD_CHAR.search(w) for w in words)]
    if not blocks:
        return None
    first, last = blocks[0], blocks[-1]
    if len(blocks) == 1 and len(first) <= SHORT_QUOTE_WORDS:
        return encode(_phrase(first))
    text = _lowered(whole())
    if len(blocks) == 1:
        room = min(MAX_PART_WORDS, len(first) // 2)  # the two parts never overlap
        first_room = last_room = room
    else:
        first_room, last_room = min(MAX_PART_WORDS, len(first)), min(MAX_PART_WORDS, len(last))
    # textStart: the first match in the text must be the quote's own beginning.
    n = min(FEW_WORDS, first_room)
    found = _search(text, _phrase(first[:n]), 0)
    while n < first_room and (found is None or found.start() < start):
        n += 1
        # A match of n words holds a match of fewer at its start: none lies before theirs.
        found = _search(text, _phrase(first[:n]), found.start() if found is not None else 0)
    head = _phrase(first[:n])
    # textEnd: searched from where textStart's match ends; the first match must end the quote.
    after = found.end() if found is not None and found.start() >= start else start
    quote_end = start + len(_TRAILING.sub("", text[start:end]))
    m = min(FEW_WORDS, last_room)
    found = _search(text, _phrase(last[-m:]), after)
    while m < last_room and (found is None or found.end() < quote_end):
        m += 1
        found = _search(text, _phrase(last[-m:]), after)
    tail = _phrase(last[-m:])
    if not head or not tail:  # one part was punctuation alone
        return encode(head or tail) if head or tail else None
    return f"{encode(head)},{encode(tail)}"


def encode(part: str) -> str:
    """Percent-encode everything but unreserved characters (RFC 3986), ``-`` included:
    in a text directive it marks a prefix or suffix, ``,`` separates parts and ``&``
    separates directives."""
    return quote(part, safe="").replace("-", "%2D")


def _phrase(words: list[str]) -> str:
    return _EDGE.sub("", " ".join(words))


def _search(text: str, phrase: str, pos: int) -> re.Match[str] | None:
    """The first case-insensitive match of ``phrase``'s words, any whitespace between them,
    on word boundaries, from ``pos`` on. ``text`` is lower-cased already (see
    ``_lowered``): a pattern that starts with a literal is found by a fast scan, which
    neither ``re.IGNORECASE`` nor a look-behind allows (40x slower on a long page)."""
    if not phrase:
        return None
    pattern = re.compile(r"\s+".join(re.escape(w) for w in phrase.lower().split(" ")) + r"(?!\w)")
    found = pattern.search(text, pos)
    while found is not None and found.start() > 0 and _is_word_char(text[found.start() - 1]):
        found = pattern.search(text, found.start() + 1)
    return found


def _is_word_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def _lowered(text: str) -> str:
    """``text`` lower-cased with every offset kept; the rare text where lower-casing
    lengthens a character (U+0130 İ) keeps its case, so its matches are case-sensitive."""
    lowered = text.lower()
    return lowered if len(lowered) == len(text) else text


class Anchors:
    """Anchors of spans in stored versions, each version read from the store once: make
    one per request (or per verification). A version's text is read only when a link
    needs it (a document with a URL and no pages, and a quote longer than a few words):
    a page or a link to a PDF page needs the version's source and metadata alone."""

    def __init__(self, store: Corpus):
        self.store = store
        self._documents: dict[tuple[str, str], Document | None] = {}
        self._infos: dict[tuple[str, str], Document | None] = {}

    def document(self, doc_id: str, version: str) -> Document | None:
        """The whole version, text included."""
        key = (doc_id, version)
        if key not in self._documents:
            self._documents[key] = self.store.document(doc_id, version)
        return self._documents[key]

    def info(self, doc_id: str, version: str) -> Document | None:
        """The version without its text (``Corpus.document_info``), or the whole one when
        it was read already."""
        key = (doc_id, version)
        if key in self._documents:
            return self._documents[key]
        if key not in self._infos:
            self._infos[key] = self.store.document_info(doc_id, version)
        return self._infos[key]

    def of(self, doc_id: str, version: str, start: int, end: int, quote: str | None = None) -> Anchor:
        """The anchor of ``[start, end)`` in the version; ``quote``: the text there (a
        sentence's text, which the store keeps equal to it), when the caller has it."""
        info = self.info(doc_id, version)
        if info is None:
            return Anchor()
        if info.text:  # the whole version
            return anchor(info, start, end)
        return _anchor(info, start, end, quote, lambda: self._text(doc_id, version))

    def _text(self, doc_id: str, version: str) -> str:
        doc = self.document(doc_id, version)
        return doc.text if doc is not None else ""


__all__ = ["FEW_WORDS", "MAX_PART_WORDS", "SHORT_QUOTE_WORDS", "Anchor", "Anchors", "anchor", "encode", "source_url",
           "text_directive"]
