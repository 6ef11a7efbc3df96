"""HTML: the article's main text, without navigation, ads and boilerplate (trafilatura).

trafilatura is the field's standard for news pages (Apache-2.0). Its text has one line per
block (paragraph, heading, list item, table cell); blocks are joined here with a blank line
so sentences never merge across them. Title, author, date, canonical URL, site name,
description and language go into the metadata when the page has them. Lost: images,
tables' structure (each cell becomes a block of its own), link targets, comments under
the article, and whatever trafilatura judges boilerplate.
"""

from __future__ import annotations

import re
from typing import Any

import lxml.html
import trafilatura

from citeqa.index.extract.plain import check_size
from citeqa.index.extract.types import Extracted, ExtractionError, Limits

NO_MAIN_TEXT = "the HTML page has no main text (only navigation, boilerplate or nothing)"
_WORD = re.compile(r"\w+")
_LIST_ITEM = re.compile(r"^- ")  # trafilatura's mark for a list item: not the page's text
_METADATA = ("author", "date", "url", "sitename", "description", "language")


class HtmlExtractor:
    media_types = ("text/html",)

    def extract(self, data: bytes, limits: Limits) -> Extracted:
        document = _extract(data)
        if document is None and b"<body" not in data[:65536].lower():
            # A fragment ("<p>...</p>") has no body for trafilatura to look in.
            document = _extract(b"<html><body>" + data + b"</body></html>")
        if document is not None:
            text = document.text or ""
        else:
            # Nothing looked like an article (a page that is one <pre>, say): trafilatura's
            # baseline, all the body's text, and the page's metadata on their own.
            text = trafilatura.baseline(data)[1]
            document = trafilatura.extract_metadata(data)
        lines = [_LIST_ITEM.sub("", line).strip() for line in text.splitlines()]
        lines = [line for line in lines if line]
        if not lines or _only_links(lines, data):
            raise ExtractionError(422, NO_MAIN_TEXT)
        text = check_size("\n\n".join(lines), limits)
        metadata: dict[str, Any] = {}
        for name in _METADATA:
            value = getattr(document, name, None)
            if isinstance(value, str) and value.strip():
                metadata[name] = value.strip()
        title = getattr(document, "title", None) or ""
        return Extracted(text=text, media_type="text/html", title=title.strip(), metadata=metadata)


def _extract(data: bytes) -> Any:
    return trafilatura.bare_extraction(
        data, with_metadata=True, include_comments=False, include_tables=True, include_images=False,
        include_links=False, deduplicate=False,
    )


def _only_links(lines: list[str], data: bytes) -> bool:
    """trafilatura falls back to any text it finds; on a page of links alone that is the
    menu. Every word being a word of some link's text means there was no main text."""
    try:
        tree = lxml.html.fromstring(data)
    except (ValueError, lxml.etree.ParserError):
        return False
    linked = {word for a in tree.iter("a") for word in _WORD.findall(a.text_content().lower())}
    return all(word in linked for line in lines for word in _WORD.findall(line.lower()))
