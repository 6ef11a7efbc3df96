"""Plain text: UTF-8 (or UTF-16 with its byte-order mark), the mark stripped, stored as is."""

from __future__ import annotations

import codecs

from citeqa.index.extract.types import Extracted, ExtractionError, Limits

_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))


def decode_text(data: bytes, what: str = "text") -> str:
    """The text of ``data``: UTF-8 unless a byte-order mark says UTF-16; the mark is not
    part of the text. Guessing other encodings would store wrong letters silently."""
    encoding = "utf-8"
    for bom, name in _BOMS:
        if data.startswith(bom):
            data, encoding = data[len(bom):], name
            break
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise ExtractionError(
            422, f"{what} is not valid {encoding.upper()} (undecodable byte at offset {exc.start}); save it as UTF-8"
        ) from exc
    if "\x00" in text:
        raise ExtractionError(422, f"{what} contains NUL characters (a binary file?)")
    return text


def check_size(text: str, limits: Limits) -> str:
    if len(text) > limits.max_text_chars:
        raise ExtractionError(
            413, f"the extracted text has {len(text):,} characters, more than the limit of {limits.max_text_chars:,}"
        )
    return text


def require_text(text: str, message: str) -> str:
    if not text.strip():
        raise ExtractionError(422, message)
    return text


class PlainTextExtractor:
    media_types = ("text/plain",)

    def extract(self, data: bytes, limits: Limits) -> Extracted:
        text = check_size(decode_text(data), limits)
        return Extracted(text=require_text(text, "the text is empty"), media_type="text/plain")
