"""Which format bytes are in, and the one entry point that extracts any of them.

The type comes from the upload's declared media type and the bytes themselves, never from
the file name alone: content with a signature (``%PDF-``, a zip holding
``word/document.xml``, PNG ...) is what it says, whatever was declared; text has no
signature, so the declared type says whether it is Markdown, and only when nothing useful
was declared does the name's extension (.md) decide. HTML is recognised by its first tag.
"""

from __future__ import annotations

import io
import logging
import re
import zipfile
from typing import Mapping

from citeqa.index.extract.docx import MEDIA_TYPE as DOCX
from citeqa.index.extract.docx import DocxExtractor
from citeqa.index.extract.html import HtmlExtractor
from citeqa.index.extract.markdown import MarkdownExtractor
from citeqa.index.extract.pdf import PdfExtractor
from citeqa.index.extract.plain import PlainTextExtractor
from citeqa.index.extract.types import Extracted, ExtractionError, Extractor, Limits

log = logging.getLogger(__name__)

PDF, HTML, MARKDOWN, PLAIN = "application/pdf", "text/html", "text/markdown", "text/plain"
# Declarations that say nothing about the format.
_GENERIC = {"", "application/octet-stream", "binary/octet-stream", "application/unknown", "application/x-download",
            "application/force-download"}
_ALIASES = {
    "application/x-pdf": PDF, "application/acrobat": PDF, "text/pdf": PDF,
    "application/xhtml+xml": HTML, "text/xhtml": HTML,
    "text/x-markdown": MARKDOWN, "text/md": MARKDOWN, "text/x-md": MARKDOWN, "application/markdown": MARKDOWN,
    "application/x-markdown": MARKDOWN,
}
_MARKDOWN_NAMES = (".md", ".markdown", ".mdown", ".mkd")
# Signatures of common formats that are not read, so the 415 names what was sent.
_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF8", "image/gif"),
    (b"RIFF", "application/octet-stream"), (b"\x1f\x8b", "application/gzip"),
    (b"7z\xbc\xaf", "application/x-7z-compressed"),
    (b"Rar!", "application/vnd.rar"), (b"\xd0\xcf\x11\xe0", "application/msword"), (b"{\\rtf", "application/rtf"),
    (b"%!PS", "application/postscript"),
)
_HTML_START = re.compile(
    rb"\A(?:\s|<!--.*?-->|<\?xml[^>]*>)*<(?:!doctype\s+html|html|head|body|title|meta|p|div|article|h[1-6]|table"
    rb"|script|style|a|br|ul|ol|section|main|header|nav)[\s/>]", re.IGNORECASE | re.DOTALL)


def default_extractors() -> dict[str, Extractor]:
    """The built-in registry: media type -> extractor."""
    extractors: list[Extractor] = [PdfExtractor(), HtmlExtractor(), MarkdownExtractor(), DocxExtractor(),
                                   PlainTextExtractor()]
    return {media_type: extractor for extractor in extractors for media_type in extractor.media_types}


SUPPORTED = tuple(default_extractors())


def unsupported(media_type: str, supported: tuple[str, ...] = SUPPORTED) -> ExtractionError:
    return ExtractionError(
        415, f"unsupported media type {media_type or '(unknown)'}; supported: {', '.join(supported)}")


def normalise(declared: str | None) -> str:
    """"Text/HTML; charset=utf-8" -> "text/html"; aliases to their usual name."""
    media_type = (declared or "").split(";", 1)[0].strip().lower()
    return _ALIASES.get(media_type, media_type)


def sniff(data: bytes) -> str | None:
    """The media type the content itself shows, or None for text without a tag."""
    head = data[:1024]
    at = head.find(b"%PDF-")
    # Readers accept junk before the header (within 1 KB); text that mentions it is text.
    if at >= 0 and (not head[:at].strip() or not _printable(head[:at])):
        return PDF
    if data.startswith(b"PK\x03\x04"):
        return _zip_type(data)
    for signature, media_type in _SIGNATURES:
        if data.startswith(signature):
            return media_type
    if b"\x00" in data[:8192] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "application/octet-stream"
    if _HTML_START.match(data.lstrip(b"\xef\xbb\xbf")[:4096]):
        return HTML
    return None


def _printable(data: bytes) -> bool:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(ch.isprintable() or ch in "\r\n\t" for ch in text)


# Office formats that are zips too, named so that the 415 says what was sent.
_OOXML = "application/vnd.openxmlformats-officedocument"
_ZIP_MEMBERS = (
    ("word/document.xml", DOCX),
    ("xl/workbook.xml", f"{_OOXML}.spreadsheetml.sheet"),
    ("ppt/presentation.xml", f"{_OOXML}.presentationml.presentation"),
)


def _zip_type(data: bytes) -> str:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
            if "mimetype" in names and archive.getinfo("mimetype").file_size < 100:
                return archive.read("mimetype").decode("ascii", "replace").strip() or "application/zip"
    except zipfile.BadZipFile:
        return DOCX  # a damaged zip: let the DOCX reader say what is wrong with it
    return next((media_type for member, media_type in _ZIP_MEMBERS if member in names), "application/zip")


def detect(data: bytes, declared_type: str | None = None, filename: str | None = None) -> str:
    """The media type to read ``data`` as (which may be one not supported)."""
    declared = normalise(declared_type)
    found = sniff(data)
    if found is not None and found != HTML:
        return found  # a signature beats any declaration
    if declared in (PDF, DOCX):
        return declared  # declared binary, no signature: its reader reports the damage
    if declared and declared not in _GENERIC:
        return declared
    if found == HTML:
        return HTML
    if filename and filename.lower().endswith(_MARKDOWN_NAMES):
        return MARKDOWN
    return PLAIN


def extract(
    data: bytes,
    declared_type: str | None = None,
    filename: str | None = None,
    limits: Limits | None = None,
    extractors: Mapping[str, Extractor] | None = None,
) -> Extracted:
    """The text of an uploaded document (the one entry point). Raises ExtractionError."""
    limits = limits or Limits()
    registry = extractors if extractors is not None else default_extractors()
    if len(data) > limits.max_bytes:
        raise ExtractionError(413, f"the file has {len(data):,} bytes, more than the limit of {limits.max_bytes:,}")
    media_type = detect(data, declared_type, filename)
    extractor = registry.get(media_type)
    if extractor is None:
        raise unsupported(media_type, tuple(registry))
    if not data.strip():
        raise ExtractionError(422, "the file is empty")
    try:
        return extractor.extract(data, limits)
    except ExtractionError:
        raise
    except Exception as exc:  # a library failing on odd bytes: the file is at fault (422), not the server
        log.warning("extracting %s failed", media_type, exc_info=True)
        raise ExtractionError(422, f"the {media_type} file could not be read ({type(exc).__name__}: {exc})"[:500]) \
            from exc
