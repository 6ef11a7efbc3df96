"""Markdown: the readable text, without markup (markdown-it-py, CommonMark + tables).

Quotes must not carry ``#``, ``**``, ``[text](url)`` or code fences, so the document is
parsed and its text written back block by block, a blank line between blocks: headings,
paragraphs, list items, quotes, code (its lines kept, the fence dropped), table rows
(cells joined by " | "). Inline: emphasis dropped, a link keeps its text, an image its
alt text, a soft line break becomes a space. The title is the front matter's ``title``
or the first heading. Lost: link targets, images, raw HTML, footnote syntax (kept as
text), and the list and table layout.
"""

from __future__ import annotations

import re
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token

from citeqa.index.extract.plain import check_size, decode_text, require_text
from citeqa.index.extract.types import Extracted, Limits

# YAML front matter (Jekyll, Hugo, Obsidian): simple "key: value" lines are read.
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(\r?\n|\Z)", re.DOTALL)
_FRONT_KEYS = ("title", "author", "date", "url", "description")


class MarkdownExtractor:
    media_types = ("text/markdown",)

    def extract(self, data: bytes, limits: Limits) -> Extracted:
        source = check_size(decode_text(data, "the Markdown file"), limits)
        metadata, source = _front_matter(source)
        blocks = _blocks(MarkdownIt("commonmark").enable("table").parse(source))
        text = require_text("\n\n".join(text for _, text in blocks), "the Markdown file has no text")
        heading = next((text for kind, text in blocks if kind == "heading"), "")
        title = str(metadata.pop("title", "") or heading)
        return Extracted(text=text, media_type="text/markdown", title=title, metadata=metadata)


def _front_matter(source: str) -> tuple[dict[str, Any], str]:
    match = _FRONT_MATTER.match(source)
    if not match:
        return {}, source
    metadata: dict[str, Any] = {}
    for line in match.group(1).splitlines():
        key, sep, value = line.partition(":")
        value = value.strip().strip("\"'")
        if sep and key.strip().lower() in _FRONT_KEYS and value:
            metadata[key.strip().lower()] = value
    return metadata, source[match.end():]


def _blocks(tokens: list[Token]) -> list[tuple[str, str]]:
    """(kind, text) of each block in order; kind is "heading" for headings."""
    blocks: list[tuple[str, str]] = []
    row: list[str] | None = None
    heading = False
    for token in tokens:
        if token.type == "heading_open":
            heading = True
        elif token.type == "heading_close":
            heading = False
        elif token.type == "tr_open":
            row = []
        elif token.type == "tr_close" and row is not None:
            if any(row):
                blocks.append(("row", " | ".join(row)))
            row = None
        elif token.type == "inline":
            text = _inline(token.children or [])
            if row is not None:
                row.append(text)
            elif text:
                blocks.append(("heading" if heading else "text", text))
        elif token.type in ("fence", "code_block"):
            code = token.content.strip("\n")
            if code.strip():
                blocks.append(("code", code))
    return blocks


def _inline(children: list[Token]) -> str:
    parts: list[str] = []
    for child in children:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type == "softbreak":
            parts.append(" ")
        elif child.type == "hardbreak":
            parts.append("\n")
        elif child.type == "image":
            parts.append(_inline(child.children or []))
    return re.sub(r"[ \t]+", " ", "".join(parts)).strip()
