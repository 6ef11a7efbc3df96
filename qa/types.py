"""What answering passes around: passages in, a draft out, verified citations at the end."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol, Sequence

from index.types import Hit, Sentence

Status = Literal["answered", "partial", "unsupported"]


@dataclass(frozen=True)
class Passage:
    """A retrieved sentence as shown to a generator, numbered from 1 for [n] markers."""

    number: int
    hit: Hit

    @property
    def sentence(self) -> Sentence:
        return self.hit.sentence


@dataclass(frozen=True)
class ChatTurn:
    role: Literal["user", "assistant", "system"]
    content: str


@dataclass(frozen=True)
class Draft:
    """A generator's answer: text with [n] markers that point at passages."""

    text: str
    # The generator says the passages do not answer the question.
    declined: bool = False


class Generator(Protocol):
    name: str

    def generate(self, question: str, passages: Sequence[Passage], history: Sequence[ChatTurn] = ()) -> Draft: ...


@dataclass(frozen=True)
class Citation:
    marker: int
    sentence_id: str
    doc_id: str
    doc_version: str
    start: int
    end: int
    quote: str
    answer_start: int
    answer_end: int
    score: float  # the retrieval score of the cited sentence (as in /v1/search)
    support: float  # how well the quote supports the cited claim, 0..1 (see qa/citations.py)


@dataclass(frozen=True)
class ShortAnswer:
    """The factoid inside the first cited sentence: ``text`` is the stored document text at
    [start, end), so it obeys the same contract as a citation's quote."""

    text: str
    doc_id: str
    doc_version: str
    start: int
    end: int


@dataclass(frozen=True)
class VerifiedAnswer:
    answer: str
    status: Status
    citations: list[Citation]
    dropped_citations: int
    timings_ms: dict[str, float] = field(default_factory=dict)
    short_answer: ShortAnswer | None = None
