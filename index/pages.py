"""Where a span of a stored text lies among the pages of the file it was extracted from.

A version extracted from a PDF keeps each page's (start, end) in its text
(``Source.pages``); these map offsets back to 1-based page numbers. Kept apart from the
extractors so that the query path (citations, spans) reads pages without loading them.
"""

from __future__ import annotations

from bisect import bisect_right

from citeqa.index.types import PageSpans


def page_at(pages: PageSpans, offset: int) -> int | None:
    """The 1-based page holding ``offset`` given each page's (start, end) in the text; an
    offset between two pages (the blank line that joins them) belongs to the next page.
    None: no pages, or past the end. (A stored document keeps its spans: no Extracted needed.)"""
    numbers = [n for n, (start, end) in enumerate(pages, start=1) if end > start]
    starts = [pages[n - 1][0] for n in numbers]
    i = bisect_right(starts, offset) - 1
    if i >= 0 and offset < pages[numbers[i] - 1][1]:
        return numbers[i]
    return numbers[i + 1] if i + 1 < len(numbers) else None


def page_range(pages: PageSpans, start: int, end: int) -> tuple[int, int] | None:
    """(first, last) 1-based pages of the span ``text[start:end]``, or None."""
    first = page_at(pages, start)
    if first is None:
        return None
    last = page_at(pages, max(start, end - 1))
    return first, last if last is not None else first


__all__ = ["page_at", "page_range"]
