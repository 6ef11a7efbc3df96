"""Documents in other formats become plain text plus anchors back into the original.

``extract(data, declared_type, filename, limits)`` is the entry point: it detects the
format (detect.py) and runs that format's extractor (one module each: html, pdf, markdown,
docx, plain). What it returns is the text ingest stores, with a title, metadata and, for
PDFs, each page's offsets in that text.
"""

from citeqa.index.extract.detect import SUPPORTED, default_extractors, detect, extract
from citeqa.index.extract.types import (
    MAX_DECOMPRESSED_BYTES,
    MAX_PDF_PAGES,
    MAX_TEXT_CHARS,
    MAX_UPLOAD_BYTES,
    Extracted,
    ExtractionError,
    Extractor,
    Limits,
    PageSpans,
)
from citeqa.index.pages import page_at, page_range

__all__ = [
    "MAX_DECOMPRESSED_BYTES", "MAX_PDF_PAGES", "MAX_TEXT_CHARS", "MAX_UPLOAD_BYTES", "SUPPORTED", "Extracted",
    "ExtractionError", "Extractor", "Limits", "PageSpans", "default_extractors", "detect", "extract", "page_at",
    "page_range",
]
