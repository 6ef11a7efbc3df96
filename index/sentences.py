"""Sentence splitting with exact code-point offsets into the original text.

pysbd decides where sentences end; this module maps its segments back onto the
original text by walking non-whitespace characters, so the spans are exact even where
pysbd normalises spacing, and the stored text never changes. Lines are split first:
a headline or a list item without a full stop is a sentence of its own.
"""

from __future__ import annotations

import re
from functools import lru_cache

import pysbd

from citeqa.index.types import Span

# A line break ends a sentence; runs of other white space never do.
_LINE = re.compile(r"[^\r\n\u2028\u2029\x85\x0b\x0c]+")

# pysbd calls int() on its regex's \s matches, and int() rejects the information
# separators U+001C..U+001F that \s accepts ("a\x1c1. b" raised ValueError). They are
# white space to this module either way, so pysbd sees a space instead: same length,
# same non-white-space characters, so the mapping back onto the text is unchanged.
_SEPARATORS = str.maketrans({ch: " " for ch in "\x1c\x1d\x1e\x1f"})


@lru_cache(maxsize=4)
def _segmenter(language: str) -> pysbd.Segmenter:
    return pysbd.Segmenter(language=language, clean=False)


def split_sentences(text: str, language: str = "en") -> list[Span]:
    """Spans of the sentences of ``text``: ordered, non-overlapping, each stripped of
    surrounding white space, together covering every non-white-space character."""
    spans: list[Span] = []
    for line in _LINE.finditer(text):
        if line.group().strip():
            spans.extend(_split_line(text, line.start(), line.end(), language))
    return spans


def _split_line(text: str, start: int, end: int, language: str) -> list[Span]:
    try:
        segments = _segmenter(language).segment(text[start:end].translate(_SEPARATORS))
    except Exception:  # pysbd's rules are regexes over odd input; a line is a safe unit
        segments = [text[start:end]]
    spans: list[Span] = []
    cursor = start
    for segment in segments:
        need = sum(1 for ch in segment if not ch.isspace())
        if need == 0:
            continue
        span, cursor = _consume(text, cursor, end, need)
        if span is not None:
            spans.append(span)
    # pysbd keeps every character with clean=False; should it ever drop some, the rest of
    # the line still becomes a sentence so no text is unsearchable.
    if cursor < end and text[cursor:end].strip():
        span, _ = _consume(text, cursor, end, end - cursor)
        if span is not None:
            spans.append(span)
    return spans


def _consume(text: str, cursor: int, end: int, need: int) -> tuple[Span | None, int]:
    """Take ``need`` non-white-space characters from ``cursor``; return their span."""
    while cursor < end and text[cursor].isspace():
        cursor += 1
    first = cursor
    last = cursor
    while cursor < end and need > 0:
        if not text[cursor].isspace():
            need -= 1
            last = cursor + 1
        cursor += 1
    if last <= first:
        return None, cursor
    return Span(first, last), last
