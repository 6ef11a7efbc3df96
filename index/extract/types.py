"""What every format's extractor returns, the errors it raises, and the limits it obeys.

The extracted ``text`` is what ingest stores, so the citation contract
(``text[start:end] == quote``) holds on it unchanged; ``pages`` maps offsets in that text
back to the pages of a PDF.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Any, Protocol

# Defaults; the settings object passes its own values in (see Limits).
MAX_UPLOAD_BYTES = 25_000_000
# DOCX is a zip: the sum of its members' sizes once inflated. Real documents stay far below
# (a 300-page report's document.xml is ~10 MB); a zip bomb is far above.
MAX_DECOMPRESSED_BYTES = 200_000_000
MAX_PDF_PAGES = 2_000
# The text one document may yield (the API's JSON body limit is 5 MB of text as well).
MAX_TEXT_CHARS = 5_000_000


@dataclass(frozen=True)
class Limits:
    max_bytes: int = MAX_UPLOAD_BYTES
    max_decompressed_bytes: int = MAX_DECOMPRESSED_BYTES
    max_pages: int = MAX_PDF_PAGES
    max_text_chars: int = MAX_TEXT_CHARS


class ExtractionError(Exception):
    """The bytes cannot become text. ``status`` is the HTTP status the API answers with:
    413 too large, 415 unsupported type, 422 unreadable content (the message says why)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


PageSpans = tuple[tuple[int, int], ...]


def page_at(pages: PageSpans, offset: int) -> int | None:
    """The 1-based page holding ``offset`` given each page's (start, end) in the text; an
    offset between two pages (the blank line that joins them) belongs to the next page.
    None: no pages, or past the end. (A stored document keeps its spans: no Extracted needed.)"""
    numbers = [n for n, (start, end) in enumerate(pages, start=1) if end > start]
    starts = [pages[n - 1][0] for n in numbers]
    i = bisect_right(starts, offset) - 1
    if i >= 0 and offset < pages[numbers[i] - 1][1]:
        return numbers[i]
    return numbers[i + 1] if i + 1 < len(numbers) else None


def page_range(pages: PageSpans, start: int, end: int) -> tuple[int, int] | None:
    """(first, last) 1-based pages of the span ``text[start:end]``, or None."""
    first = page_at(pages, start)
    if first is None:
        return None
    last = page_at(pages, max(start, end - 1))
    return first, last if last is not None else first


@dataclass(frozen=True)
class Extracted:
    text: str
    media_type: str
    title: str = ""
    # JSON values: author, date (published), created (the file's), url (canonical),
    # description, sitename, language, subject, page_count, as the source has them.
    metadata: dict[str, Any] = field(default_factory=dict)
    # (start, end) of each page's text in ``text``, in page order; empty for formats
    # without pages. A page without text has start == end.
    pages: PageSpans = ()

    def page_of(self, offset: int) -> int | None:
        return page_at(self.pages, offset)

    def pages_of(self, start: int, end: int) -> tuple[int, int] | None:
        return page_range(self.pages, start, end)


class Extractor(Protocol):
    """One document format: bytes in, text (and where it came from) out."""

    @property
    def media_types(self) -> tuple[str, ...]:
        """The media types it reads, the first its usual name."""
        ...

    def extract(self, data: bytes, limits: Limits) -> Extracted: ...
