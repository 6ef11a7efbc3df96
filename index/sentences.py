"""Sentence splitting with exact code-point offsets into the original text.

pysbd decides where sentences end; this module maps its segments back onto the
original text, so the spans are exact even where pysbd normalises spacing, and the
stored text never changes. Lines are split first: a headline or a list item without a
full stop is a sentence of its own.

The cost is linear in the text, whatever it holds. pysbd's ``segment`` is quadratic in
the sentences it is given at once (it searches the whole text again for every sentence
to find its offsets: 100 KB of "a. " took 275 s) and some of its rules are superlinear
in the text ("Dr. " repeated), so a line reaches pysbd's rules in bounded windows and
the offsets are found here, walking forward only. No sentence is longer than
``MAX_SENTENCE_CHARS``: a longer one (a megabyte without a full stop) is cut at white
space, so no single sentence costs more than a bounded piece of text to embed or match.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Iterator

import pysbd

from citeqa.index.types import Span

# Longer sentences are cut in pieces of at most this many characters (the longest of the
# 10,327 sentences of the SQuAD dev paragraphs has 1,412; the embedder reads only its
# first 256 word pieces, about 1,000 characters of English, but lexical search all).
MAX_SENTENCE_CHARS = 2_000
# pysbd sees at most this much of a line at once: a sentence of the longest kind and the
# text after it (MAX_SENTENCE_CHARS + _LOOKAHEAD < _WINDOW, see _split_line), and short
# enough that its superlinear rules stay cheap.
_WINDOW = 3_000
# A sentence that ends closer than this to the end of a window may end elsewhere once
# pysbd sees more of the text after it: it is split again, in the next window.
_LOOKAHEAD = 500

# A line break ends a sentence; runs of other white space never do.
_LINE = re.compile(r"[^\r\n\u2028\u2029\x85\x0b\x0c]+")
_NOT_SPACE = re.compile(r"\S")
# The last white space of a stretch (greedy), where an overlong sentence is cut.
_LAST_SPACE = re.compile(r".*\s", re.DOTALL)

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
    surrounding white space, together covering every non-white-space character, none
    longer than ``MAX_SENTENCE_CHARS``."""
    spans: list[Span] = []
    for line in _LINE.finditer(text):
        spans.extend(_split_line(text, line.start(), line.end(), language))
    return spans


def _split_line(text: str, start: int, end: int, language: str) -> Iterator[Span]:
    pos = start
    while (first := _NOT_SPACE.search(text, pos, end)) is not None:
        # pysbd reads a line's leading white space too (" .\"" is two sentences to it,
        # ".\"" one), so the first window keeps it, unless there is an odd lot of it.
        if first.start() - pos > _LOOKAHEAD:
            pos = first.start()
        stop = min(end, first.start() + _WINDOW)
        pieces = [p for segment in _segments(text, pos, stop, language) for p in _bounded(text, segment)]
        if stop < end:
            # Keep what pysbd has seen enough text after. The first piece always
            # qualifies (it starts at ``first`` and is at most MAX_SENTENCE_CHARS <
            # _WINDOW - _LOOKAHEAD long), and a piece left over starts at least
            # _WINDOW - _LOOKAHEAD - MAX_SENTENCE_CHARS after ``first``: each window moves
            # on by that much, so the cost stays linear in the line.
            pieces = [p for p in pieces if p.end <= stop - _LOOKAHEAD] or pieces[:1]
        yield from pieces
        pos = pieces[-1].end if pieces else stop


def _segments(text: str, start: int, end: int, language: str) -> Iterator[Span]:
    """pysbd's sentences of ``text[start:end]``, as spans.
    Its rules rewrite the text and restore it; a segment found verbatim where the last
    one ended is taken as it is, any other by its count of non-white-space characters
    (the same characters), and whatever pysbd leaves out is a sentence of its own."""
    window = text[start:end]
    try:
        segments = _segmenter(language).processor(window.translate(_SEPARATORS)).process()
    except Exception:  # pysbd's rules are regexes over odd input; the window is a safe unit
        segments = [window]
    cursor = start
    for segment in segments:
        stripped = segment.strip()
        if not stripped:
            continue
        first = _NOT_SPACE.search(text, cursor, end)
        if first is None:
            return
        cursor = first.start()
        if text.startswith(stripped, cursor, end):
            yield Span(cursor, cursor + len(stripped))
            cursor += len(stripped)
            continue
        span, cursor = _consume(text, cursor, end, sum(1 for ch in stripped if not ch.isspace()))
        if span is not None:
            yield span
    if _NOT_SPACE.search(text, cursor, end):
        span, _ = _consume(text, cursor, end, end - cursor)
        if span is not None:
            yield span


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


def _bounded(text: str, span: Span) -> Iterator[Span]:
    """``span`` in pieces of at most MAX_SENTENCE_CHARS, cut at the last white space of
    each stretch (in its second half), else at the limit."""
    start, end = span.start, span.end
    while end - start > MAX_SENTENCE_CHARS:
        limit = start + MAX_SENTENCE_CHARS
        space = _LAST_SPACE.match(text, start + MAX_SENTENCE_CHARS // 2, limit + 1)
        cut = space.end() - 1 if space else _grapheme_boundary(text, start, limit)
        yield Span(start, _rstrip(text, start, cut))
        start = cut
        while text[start].isspace():  # a piece ends before its white space; text[end-1] is not space
            start += 1
    yield Span(start, end)


def _grapheme_boundary(text: str, start: int, cut: int) -> int:
    """``cut``, moved back over combining marks and joiners so a letter keeps its accents
    (but never to ``start``: a run of nothing but marks is cut anyway)."""
    back = cut
    while back > start + 1 and _joins_previous(text[back]):
        back -= 1
    return back if back > start + 1 else cut


def _joins_previous(ch: str) -> bool:
    return unicodedata.category(ch) in ("Mn", "Mc", "Me") or ch in "\u200d\ufe0f"


def _rstrip(text: str, start: int, end: int) -> int:
    while end > start and text[end - 1].isspace():
        end -= 1
    return end
