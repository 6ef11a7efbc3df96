"""PDF: the text of every page, repaired to read as prose, with each page's offsets.

pypdfium2 (PDFium, Chrome's PDF engine; Apache-2.0/BSD-3) was chosen by measurement
(tests/index/extract/compare_pdf_libraries.py: generated PDFs with known text, 2 shared
cores, three to four runs): all three libraries got every word in order on single-column pages
(fpdf2 and reportlab, 30 pages each); on a two-column page pdfplumber interleaved the
columns (word-order match 0.52, the others 1.00). Raw text, ms per page on the 30-page
documents: pypdfium2 1.2-2.1, pypdf 4.4-12, pdfplumber 122-185; on two real PDFs (data/):
4.1-10, 57-94 and 204-490. This module on top of pypdfium2 (line boxes, paragraphs,
repair) takes 1.7-3.6 ms per generated page (5.9-10 on the real ones) and gives back every
written paragraph verbatim as a block of its own (120/120 per producer).

Lines become paragraphs, pages and prose in pdf_layout.py. Lost: tables' structure (cells
become words in reading order), images, running heads and feet, and no OCR: scanned pages
without a text layer give no text.
"""

from __future__ import annotations

import re
import threading
from typing import Any

import pypdfium2 as pdfium

from citeqa.index.extract.pdf_layout import Line, join_pages, page_texts
from citeqa.index.extract.plain import check_size
from citeqa.index.extract.types import Extracted, ExtractionError, Limits

# PDFium is not thread-safe: one call into it at a time, process-wide (pypdfium2's docs).
_PDFIUM = threading.Lock()

_LIGATURES = str.maketrans({"\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl",
                            "\ufb05": "st", "\ufb06": "st", "\u00ad": ""})
# Control characters PDFium returns for glyphs without a Unicode mapping, and stray ones.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_SPACES = re.compile(r"[ \t\u00a0]+")
_LINE_END = "\ufffe"  # PDFium marks a hyphen it found at a line end with this
# What producers write when they know nothing (reportlab's defaults among them).
_FILE_NAME = re.compile(r"(?i)(\.(pdf|docx?|odt|rtf|txt|tex|dvi|indd|pptx?|xlsx?)$|^microsoft (word|powerpoint) - )")
_PLACEHOLDERS = {"(anonymous)", "(unspecified)", "untitled", "unknown", "anonymous"}


class PdfExtractor:
    media_types = ("application/pdf",)

    def extract(self, data: bytes, limits: Limits) -> Extracted:
        if b"%%EOF" not in data[-2048:]:
            raise ExtractionError(422, "the PDF is truncated or corrupt (no %%EOF marker at its end)")
        with _PDFIUM:
            lines, metadata = _read_lines(data, limits)
        pages = page_texts(lines)
        text, spans = join_pages(pages)
        if not text.strip():
            raise ExtractionError(422, "the PDF has no text layer (scanned?); OCR is out of scope")
        check_size(text, limits)
        metadata["page_count"] = len(pages)
        title = str(metadata.pop("title", ""))
        if _FILE_NAME.search(title):
            title = ""  # "Binder1.pdf", "Microsoft Word - report.docx": the producer's file, not a title
        return Extracted(text=text, media_type="application/pdf", title=title, metadata=metadata, pages=spans)


def _read_lines(data: bytes, limits: Limits) -> tuple[list[list[Line]], dict[str, Any]]:
    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        if "password" in str(exc).lower():
            raise ExtractionError(422, "the PDF is encrypted (password protected); upload it decrypted") from exc
        raise ExtractionError(422, f"the PDF is corrupt or truncated and cannot be read ({exc})") from exc
    try:
        if len(pdf) > limits.max_pages:
            raise ExtractionError(413, f"the PDF has {len(pdf):,} pages, more than the limit of {limits.max_pages:,}")
        pages: list[list[Line]] = []
        total = 0
        for page in pdf:
            pages.append(_page_lines(page))
            total += sum(len(line.text) + 1 for line in pages[-1])
            if total > limits.max_text_chars:
                raise ExtractionError(
                    413, f"the PDF's text is longer than the limit of {limits.max_text_chars:,} characters")
        return pages, _metadata(pdf)
    except pdfium.PdfiumError as exc:
        raise ExtractionError(422, f"the PDF is corrupt and cannot be read ({exc})") from exc
    finally:
        pdf.close()


def _metadata(pdf: pdfium.PdfDocument) -> dict[str, Any]:
    info = pdf.get_metadata_dict(skip_empty=True)
    out: dict[str, Any] = {}
    for key, name in (("Title", "title"), ("Author", "author"), ("Subject", "subject")):
        value = info.get(key, "").strip()
        if value and value.lower() not in _PLACEHOLDERS:
            out[name] = value
    created = _pdf_date(info.get("CreationDate", ""))
    if created:
        out["created"] = created
    return out


def _pdf_date(value: str) -> str | None:
    """"D:20240305093000Z" -> "2024-03-05" (the day is what a citation shows)."""
    match = re.match(r"D:(\d{4})(\d{2})?(\d{2})?", value)
    if not match:
        return None
    return "-".join(part for part in match.groups() if part)


def _page_lines(page: pdfium.PdfPage) -> list[Line]:
    textpage = page.get_textpage()
    try:
        lines = _lines(textpage)
    finally:
        textpage.close()
        page.close()
    return lines


def _lines(textpage: pdfium.PdfTextPage) -> list[Line]:
    """The page's lines in PDFium's reading order, each with its box (loose boxes: the
    font's ascent to descent, so a line's height follows its font size)."""
    raw = textpage.get_text_range()
    count = textpage.count_chars()
    lines: list[Line] = []
    for match in re.finditer(r"[^\r\n\ufffe]+\ufffe?", raw):
        segment = match.group()
        hyphen = segment.endswith(_LINE_END)
        body = segment[:-1] if hyphen else segment
        first = len(body) - len(body.lstrip())
        last = len(body.rstrip()) - 1
        if last < first:
            continue
        start = match.start()
        # Clamped: should PDFium ever count a character differently from its text, a box
        # is a little off, never an error.
        boxes = [textpage.get_charbox(min(start + i, count - 1), loose=True) for i in (first, last)]
        # min/max over both ends: a line drawn out of order (a form's running foot) can end
        # left of where it starts.
        left, right = min(boxes[0][0], boxes[1][0]), max(boxes[0][2], boxes[1][2])
        bottom = min(boxes[0][1], boxes[1][1])
        top = max(boxes[0][3], boxes[1][3])
        text = _SPACES.sub(" ", _CONTROL.sub(" ", body.translate(_LIGATURES))).strip()
        if text:
            lines.append(Line(text, left, right, bottom, top, hyphen))
    return lines
