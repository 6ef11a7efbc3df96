"""DOCX: paragraphs, headings, list items and table rows in document order (python-docx).

A DOCX is a zip: before python-docx inflates anything, the members' declared sizes are
summed and checked (Python's zipfile never inflates a member beyond its declared size, so a
lying header cannot get past this). The title is the core properties' title, else the
first heading. Lost: headers, footers, footnotes, endnotes, comments, text boxes, images,
tracked-change history, and tables' layout (each row becomes a line, cells joined by " | ").
"""

from __future__ import annotations

import io
import zipfile
from typing import Any

import docx
from docx.document import Document
from docx.table import Table
from docx.text.paragraph import Paragraph

from citeqa.index.extract.plain import check_size, require_text
from citeqa.index.extract.types import Extracted, ExtractionError, Limits

MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
MAX_MEMBERS = 10_000
# python-docx's own template names itself as the author of every file made from it.
_TEMPLATE_AUTHOR = "python-docx"


class DocxExtractor:
    media_types = (MEDIA_TYPE,)

    def extract(self, data: bytes, limits: Limits) -> Extracted:
        _check_zip(data, limits)
        try:
            document = docx.Document(io.BytesIO(data))
        except Exception as exc:  # zipfile's, lxml's and python-docx's own errors on broken parts
            raise ExtractionError(422, f"the DOCX file is corrupt and cannot be read ({exc})") from exc
        blocks = list(_blocks(document))
        text = "\n\n".join(text for _, text in blocks)
        text = check_size(require_text(text, "the DOCX file has no text"), limits)
        heading = next((text for kind, text in blocks if kind == "heading"), "")
        properties = document.core_properties
        metadata: dict[str, Any] = {}
        author = (properties.author or "").strip()
        if author and author != _TEMPLATE_AUTHOR:
            metadata["author"] = author
        if properties.created is not None:
            metadata["created"] = properties.created.date().isoformat()
        return Extracted(text=text, media_type=MEDIA_TYPE, title=(properties.title or "").strip() or heading,
                         metadata=metadata)


def _check_zip(data: bytes, limits: Limits) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except zipfile.BadZipFile as exc:
        raise ExtractionError(422, f"the DOCX file is corrupt or truncated (not a readable zip: {exc})") from exc
    if len(members) > MAX_MEMBERS:
        raise ExtractionError(422, f"the DOCX file has {len(members):,} parts (a decompression bomb?)")
    inflated = sum(member.file_size for member in members)
    if inflated > limits.max_decompressed_bytes:
        raise ExtractionError(
            422, f"the DOCX file inflates to {inflated:,} bytes, more than the limit of "
                 f"{limits.max_decompressed_bytes:,} (a decompression bomb?)")


def _blocks(document: Document) -> Any:
    for item in document.iter_inner_content():
        if isinstance(item, Paragraph):
            text = " ".join(item.text.split())
            if text:
                style = (item.style.name if item.style is not None else "") or ""
                yield ("heading" if style.startswith(("Heading", "Title")) else "text"), text
        elif isinstance(item, Table):
            for row in item.rows:
                cells = [" ".join(cell.text.split()) for cell in row.cells]
                # A merged cell repeats in every column it spans: once is enough.
                unique = [c for i, c in enumerate(cells) if c and (i == 0 or c != cells[i - 1])]
                if unique:
                    yield "row", " | ".join(unique)
