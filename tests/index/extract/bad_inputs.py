"""The catalogue of bad uploads: each with the status and the words of the message it must
get. Extraction tests run it here; the API's tests can run the same entries over HTTP."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from citeqa.index.extract import Limits
from tests.index.extract.builders import (
    docx_document,
    encrypted,
    fpdf_lines,
    image_only_pdf,
    zip_bomb_docx,
)

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00"


@dataclass(frozen=True)
class BadInput:
    name: str
    make: Callable[[], bytes]
    declared_type: str | None
    status: int
    says: tuple[str, ...]  # words the message must hold
    limits: Limits = Limits()


def _pdf() -> bytes:
    return fpdf_lines([["The bridge opens in May."], ["Tolls are charged on weekdays."]])


CATALOGUE = (
    BadInput("unsupported type", lambda: PNG, "image/png", 415,
             ("unsupported media type image/png", "supported:", "application/pdf", "text/html")),
    BadInput("over the size limit", _pdf, "application/pdf", 413, ("more than the limit",), Limits(max_bytes=500)),
    BadInput("encrypted PDF", lambda: encrypted(_pdf()), "application/pdf", 422, ("encrypted",)),
    BadInput("truncated PDF", lambda: _pdf()[:-300], "application/pdf", 422, ("truncated",)),
    BadInput("corrupt PDF", lambda: b"%PDF-1.7\n1 0 obj <<>> stream\nxx\n%%EOF\n", "application/pdf", 422,
             ("corrupt",)),
    BadInput("PDF without a text layer", image_only_pdf, "application/pdf", 422, ("no text layer", "OCR")),
    BadInput("HTML without main text", lambda: b"<html><body><nav><a href='/'>Home</a></nav></body></html>",
             "text/html", 422, ("no main text",)),
    BadInput("decompression bomb", lambda: zip_bomb_docx(20_000_000), None, 422, ("decompression bomb",),
             Limits(max_decompressed_bytes=5_000_000)),
    BadInput("truncated DOCX", lambda: docx_document("T", [("p", "Text.")])[:3000], None, 422, ("DOCX", "corrupt")),
    BadInput("undecodable text", lambda: "caf\u00e9 au lait".encode("latin-1"), "text/plain", 422,
             ("not valid UTF-8",)),
    BadInput("empty file", lambda: b"", None, 422, ("empty",)),
)
