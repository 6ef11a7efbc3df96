"""From a PDF's lines (text and box, in reading order) to the text of its pages.

A PDF has lines, not paragraphs: within a paragraph, line breaks become spaces and a word
hyphenated at a line end is rejoined ("extrac-" + "tion"), since a line break would end a
sentence for the splitter. A paragraph ends where the vertical gap grows, the font size
changes, or a line ends short with closing punctuation. Paragraphs are joined by a blank
line, and so are pages. A page of one-line paragraphs reads as one paragraph (no line of a
paragraph shows the usual spacing to compare with). Lost: tables' structure (cells become
words in reading order), images, and running heads and feet: a bare page number at a
page's top or bottom is dropped, and so is a line that heads or foots most pages, numbers
aside. Footnotes stay where the producer drew them (usually at the page's end). Columns are
read in the order the producer drew them (column after column for LaTeX, Word and most
generators). Nothing here knows the PDF library: pdf.py reads the lines.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from dataclasses import dataclass
from itertools import pairwise

_PAGE_NUMBER = re.compile(r"(?i)(page\s+)?\d{1,4}(\s+(of|/)\s+\d{1,4})?|-\s*\d{1,4}\s*-")
_CLOSING = re.compile(r"[.!?:;][\"'\u201d\u2019)\]]*$")
_DIGITS = re.compile(r"\d+")
_WORD = re.compile(r"\w+(?:-\w+)*")


@dataclass
class Line:
    text: str
    left: float
    right: float
    bottom: float
    top: float
    hyphen: bool  # the reader saw a word hyphenated across this line's end

    @property
    def height(self) -> float:
        return self.top - self.bottom


_Layout = list[list[list[Line]]]  # pages of paragraphs of lines


def page_texts(pages: list[list[Line]]) -> list[str]:
    """Each page's text: its paragraphs, lines joined, a blank line between paragraphs."""
    pages = _drop_running_heads([_drop_page_numbers(lines) for lines in pages])
    leading = _usual_gap(pages)
    layout = [_paragraphs(lines, leading) for lines in pages]
    words = _vocabulary(layout)
    return ["\n\n".join(_join_lines(lines, words) for lines in paragraphs) for paragraphs in layout]


def _drop_page_numbers(lines: list[Line]) -> list[Line]:
    """A bare page number ("12", "Page 3 of 9", "- 4 -") as the page's first or last line
    would be a sentence of its own in every answer's neighbourhood."""
    if lines and _PAGE_NUMBER.fullmatch(lines[-1].text):
        lines = lines[:-1]
    if lines and _PAGE_NUMBER.fullmatch(lines[0].text):
        lines = lines[1:]
    return lines


def _drop_running_heads(pages: list[list[Line]]) -> list[list[Line]]:
    """Running heads and feet ("Annual report 2024 | page 7") repeat at the top or bottom
    of most pages, numbers aside: text of no page, they would otherwise sit in the middle
    of sentences that cross a page."""
    heights = [line.height for page in pages for line in page]
    if len(pages) < 3 or not heights:
        return pages
    # No larger than the body text: "Chapter 1", "Chapter 2" heading their pages are kept.
    body = statistics.median(heights) * 1.05
    for index in (0, -1):
        seen = Counter(_shape(page[index].text) for page in pages if page and page[index].height <= body)
        repeated = {shape for shape, count in seen.items() if shape and count >= max(3, len(pages) // 2)}
        pages = [_without(page, index) if page and page[index].height <= body and _shape(page[index].text) in repeated
                 else page for page in pages]
    return pages


def _shape(text: str) -> str:
    """A line with its numbers taken out ("50 THE SIEGE OF VICKSBURG." on even pages and
    "THE SIEGE OF VICKSBURG. 49" on odd ones are one head); "" for a line without words."""
    shape = " ".join(_DIGITS.sub(" ", text.lower()).split())
    return shape if any(ch.isalpha() for ch in shape) else ""


def _without(page: list[Line], index: int) -> list[Line]:
    return page[1:] if index == 0 else page[:-1]


def _usual_gap(pages: list[list[Line]]) -> float:
    """The space between two lines of a paragraph, in line heights, over the whole
    document (its leading rarely changes; one page may hold a single paragraph): the
    lower quartile of the gaps, as paragraph breaks make the larger ones. With too few
    lines to tell, single spacing's."""
    gaps = [(a.bottom - b.top) / a.height for page in pages for a, b in pairwise(page)
            if a.bottom > b.top and _same_size(a, b) and a.height > 0]
    return statistics.quantiles(gaps, n=4)[0] if len(gaps) >= 3 else 0.3


def _paragraphs(lines: list[Line], usual_gap: float) -> list[list[Line]]:
    if not lines:
        return []
    paragraphs = [[lines[0]]]
    for i in range(1, len(lines)):
        before = lines[max(0, i - 2):i + 1]  # the line ending, the one above it, the next one
        if _breaks(lines[i - 1], lines[i], usual_gap, _column_right(lines[i - 1], before)):
            paragraphs.append([lines[i]])
        else:
            paragraphs[-1].append(lines[i])
    return paragraphs


def _same_size(a: Line, b: Line) -> bool:
    return abs(a.height - b.height) <= 0.15 * max(a.height, b.height, 1e-6)


def _column_right(line: Line, neighbours: list[Line]) -> float:
    """Where a full line of ``line``'s column ends: the widest of its neighbours that
    overlap it. Neighbours, not the whole page: text flowing around a figure is narrower
    there than elsewhere in the column."""
    return max((other.right for other in neighbours if other.left < line.right and other.right > line.left),
               default=line.right)


def _breaks(a: Line, b: Line, usual_gap: float, right: float) -> bool:
    """Does a paragraph end after line ``a`` (``b`` being the next line)?"""
    if a.hyphen:
        return False
    if not _same_size(a, b):
        return True  # a heading, or a caption in a smaller font
    gap = a.bottom - b.top
    if b.top <= a.bottom + a.height and gap > (usual_gap + 0.5) * a.height:
        return True  # blank space between them (and b is below a, in the same column)
    if a.right >= right - 2 * a.height:
        return False  # a full line: the paragraph goes on
    if _CLOSING.search(a.text):
        return True  # a short line that ends a sentence ends its paragraph
    # A line well short of the column, ending without punctuation, before a capital: a
    # heading in the body's font ("Results", "2 Method"). Not any short line: in a narrow
    # column a long word leaves lines short before a name, mid-sentence.
    return b.text[:1].isupper() and a.right - a.left < 0.6 * (right - a.left)


def _vocabulary(layout: _Layout) -> set[str]:
    """The document's own words (lower case), hyphenated compounds whole: what decides
    whether a hyphen at a line end split a word or belongs to one."""
    return {word.lower() for page in layout for paragraph in page for line in paragraph
            for word in _WORD.findall(line.text)}


def _join_lines(lines: list[Line], words: set[str]) -> str:
    out = lines[0].text
    for prev, line in pairwise(lines):
        out = _join(out, line.text, prev.hyphen, words)
    return out


def _join(left: str, right: str, marked: bool, words: set[str]) -> str:
    """Two lines of one paragraph. A hyphen at the end of ``left`` is dropped when it split
    a word ("extrac-" "tion"); it stays when the document writes the word with it
    elsewhere ("well-known"), when the word holds other hyphens ("state-of-the-" "art"),
    or when the next line starts with a capital ("Smith-" "Jones")."""
    if not (marked or (left.endswith("-") and len(left) > 1 and left[-2].isalpha())):
        return left + " " + right
    stem = left[:-1] if left.endswith("-") else left
    head = stem.rsplit(" ", 1)[-1]
    tail = _WORD.match(right)
    rest = tail.group() if tail else ""
    joined, compound = f"{head}{rest}".lower(), f"{head}-{rest}".lower()
    if right[:1].islower() and "-" not in head and (joined in words or compound not in words):
        return stem + right
    return stem + "-" + right


def join_pages(pages: list[str]) -> tuple[str, tuple[tuple[int, int], ...]]:
    parts: list[str] = []
    spans: list[tuple[int, int]] = []
    position = 0
    for page in pages:
        if page and parts:
            parts.append("\n\n")
            position += 2
        spans.append((position, position + len(page)))
        parts.append(page)
        position += len(page)
    return "".join(parts), tuple(spans)
