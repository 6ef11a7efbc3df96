"""Verification, the same for every generator: markers → passages → quotes from the store.

A draft is read as claims, each ending at a group of [n] markers. For each marker:
- a number that names no passage is an invented citation: dropped and counted;
- the quote is cut from the stored document version at the sentence's offsets, never
  taken from the generator's text, and must equal the sentence the retriever returned;
- the claim must be supported by the quote: ``support`` is the share of the claim's
  content words found in the quote (1.0 for a verbatim extract); below ``min_support``
  the citation is dropped and the claim counts as unsupported.
Claims with no surviving citation make the answer ``partial``; none at all, ``unsupported``.
The answer is then rewritten so its markers are exactly the surviving citations, numbered
1, 2, ... in order of first appearance (a dropped marker leaves no trace in the text).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from index.lexical import STOPWORDS
from index.types import Store
from qa.types import Citation, Draft, Passage, Status

# One group of markers ends one claim: "[1][2]", "[1, 2]" and "[1] [2]" alike. (Spaces
# between brackets once made "[2]" a claim of its own, empty, so it was dropped.)
_MARKER = r"\[\s*\d+(?:\s*,\s*\d+)*\s*\]"
MARKER_GROUP = re.compile(rf"\s*{_MARKER}(?:[ \t]*{_MARKER})*")
_NUMBER = re.compile(r"\d+")
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class Claim:
    start: int
    end: int
    markers: list[int]
    # The marker group after the claim (empty for an uncited tail).
    group_start: int
    group_end: int


def parse_claims(text: str) -> list[Claim]:
    """Split an answer into claims: the text up to each marker group, and any uncited tail."""
    claims: list[Claim] = []
    cursor = 0
    for group in MARKER_GROUP.finditer(text):
        start, end = _trim(text, cursor, group.start())
        numbers = [int(n) for n in _NUMBER.findall(group.group())]
        claims.append(Claim(start, end, numbers, group.start(), group.end()))
        cursor = group.end()
    start, end = _trim(text, cursor, len(text))
    if _content_words(text[start:end]):
        claims.append(Claim(start, end, [], len(text), len(text)))
    return claims


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start] in " \t\r\n.,;:":
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _content_words(text: str) -> set[str]:
    words = {w.lower() for w in _WORD.findall(text)}
    return {w for w in words if w not in STOPWORDS} or words


def support(claim: str, quote: str) -> float:
    """Share of the claim's content words that the quote contains (0..1)."""
    claim_words = _content_words(claim)
    if not claim_words:
        return 0.0
    return len(claim_words & _content_words(quote)) / len(claim_words)


@dataclass(frozen=True)
class Verification:
    answer: str
    citations: list[Citation]
    dropped: int
    status: Status


def verify(draft: Draft, passages: Sequence[Passage], store: Store, min_support: float = 0.5) -> Verification:
    if draft.declined or not draft.text.strip():
        return Verification("", [], 0, "unsupported")
    by_number = {p.number: p for p in passages}
    texts: dict[tuple[str, str], str | None] = {}
    citations: list[Citation] = []
    dropped = 0
    supported_claims = 0
    claims = parse_claims(draft.text)
    numbering: dict[str, int] = {}  # sentence id -> marker in the rewritten answer
    out: list[str] = []
    cursor = 0  # in draft.text
    length = 0  # of the rewritten answer so far
    for claim in claims:
        claim_text = draft.text[claim.start:claim.end]
        out.append(draft.text[cursor:claim.end])
        length += claim.end - cursor
        answer_start, answer_end = length - (claim.end - claim.start), length
        markers: list[int] = []
        cited = False
        for number in dict.fromkeys(claim.markers):
            passage = by_number.get(number)
            if passage is None:
                dropped += 1
                continue
            s = passage.sentence
            key = (s.doc_id, s.doc_version)
            if key not in texts:
                doc = store.document(s.doc_id, s.doc_version)
                texts[key] = doc.text if doc else None
            stored = texts[key]
            quote = stored[s.start:s.end] if stored is not None else None
            score = support(claim_text, quote) if quote else 0.0
            if quote is None or quote != s.text or score < min_support or claim.end <= claim.start:
                dropped += 1
                continue
            marker = numbering.setdefault(s.id, len(numbering) + 1)
            if marker in markers:
                continue
            markers.append(marker)
            citations.append(
                Citation(
                    marker=marker, sentence_id=s.id, doc_id=s.doc_id, doc_version=s.doc_version,
                    start=s.start, end=s.end, quote=quote, answer_start=answer_start, answer_end=answer_end,
                    score=passage.hit.score, support=round(score, 4),
                )
            )
            cited = True
        supported_claims += cited
        rendered = "".join(f"[{m}]" for m in markers)
        group = draft.text[claim.group_start:claim.group_end]
        if rendered:
            # Keep the space the generator put before its markers, or add one.
            rendered = (" " if group[:1].isspace() or not group else "") + rendered
        elif draft.text[claim.group_end:claim.group_end + 1].isalnum():
            rendered = " "  # "A [9]B" must not become "AB" when [9] is dropped
        out.append(rendered)
        length += len(rendered)
        cursor = claim.group_end
    out.append(draft.text[cursor:])
    if not citations:
        status: Status = "unsupported"
    elif supported_claims == len(claims):
        status = "answered"
    else:
        status = "partial"
    return Verification("".join(out), citations, dropped, status)
