"""What every format's extractor returns, the errors it raises, and the limits it obeys.

The extracted ``text`` is what ingest stores, so the citation contract
(``text[start:end] == quote``) holds on it unchanged; ``pages`` maps offsets in that text
back to the pages of a PDF.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from citeqa.index.pages import page_at, page_range
from citeqa.index.types import PageSpans

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
