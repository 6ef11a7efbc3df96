"""What answering passes around: passages in, a draft out, verified citations at the end."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Literal, Protocol, Sequence

from pydantic import BaseModel, ConfigDict

from citeqa.index.types import Hit, Sentence

Status = Literal["answered", "partial", "unsupported"]


@dataclass(frozen=True)
class Passage:
    """A retrieved sentence as shown to a generator, numbered from 1 for [n] markers."""

    number: int
    hit: Hit
    title: str = ""  # the document's title, shown to language models beside the sentence

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
    # How many leading passages the model was shown (fewer than retrieved when the prompt
    # had to fit a context window); a marker past them is invented. None: all of them.
    shown: int | None = None
    # Generation figures for timings and benchmarks (tokens, tokens/s), when known.
    usage: dict[str, float] = field(default_factory=dict)


class GeneratorOptions(BaseModel):
    """Per-request options (``generator_options`` in /v1/ask). Each generator declares its
    own subclass; unknown fields are an error that lists the valid ones."""

    model_config = ConfigDict(extra="forbid")


# What went wrong when a generator could not draft an answer. api/ alone turns a kind into
# an HTTP status; qa/ does not speak HTTP.
GeneratorErrorKind = Literal["upstream_error", "unavailable", "timeout"]


class GeneratorError(Exception):
    """A generator could not draft an answer. ``kind``: ``"unavailable"`` (not set up here:
    a missing package, model or setting), ``"upstream_error"`` (its model or server answered
    with an error, or the connection broke) or ``"timeout"`` (no answer in time);
    ``message`` says why, in the upstream's own words where there are any."""

    def __init__(self, kind: GeneratorErrorKind, message: str):
        super().__init__(message)
        self.kind: GeneratorErrorKind = kind
        self.message = message


class Generator(Protocol):
    """Turns a question and numbered passages into a draft that cites them with [n].

    Constructors are cheap (models load on first use) and take the generator's settings
    as keyword arguments; ``Options`` validates per-request options."""

    name: str
    description: str
    Options: type[GeneratorOptions]

    def generate(self, question: str, passages: Sequence[Passage], history: Sequence[ChatTurn] = (),
                 options: GeneratorOptions | None = None) -> Draft: ...

    def stream(self, question: str, passages: Sequence[Passage], history: Sequence[ChatTurn] = (),
               options: GeneratorOptions | None = None) -> "DraftStream":
        """The same answer in pieces as they are made; joined, they are ``generate``'s text."""
        ...


class DraftStream:
    """Text pieces as a generator makes them; after the last, ``draft()`` is the whole.

    Closing it (or dropping it half-read) stops the generation: the pieces come from a
    Python generator whose ``finally`` releases the model or the upstream connection."""

    def __init__(self, pieces: Iterator[str], shown: int | None = None, declined: bool = False):
        self._pieces = pieces
        self._parts: list[str] = []
        self.shown = shown
        self.declined = declined
        self.usage: dict[str, float] = {}  # filled in by the generator as it goes

    def __iter__(self) -> Iterator[str]:
        for piece in self._pieces:
            if piece:
                self._parts.append(piece)
                yield piece

    def draft(self) -> Draft:
        return Draft("".join(self._parts), declined=self.declined, shown=self.shown, usage=dict(self.usage))

    def close(self) -> None:
        close = getattr(self._pieces, "close", None)
        if close is not None:
            close()


def drain(stream: DraftStream) -> Draft:
    """Read a stream to its end: the non-streaming answer."""
    try:
        for _ in stream:
            pass
    finally:
        stream.close()
    return stream.draft()


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
    # "generator": the model put this marker there; "verifier": the model left the claim
    # uncited (or cited a passage that does not support it) and the verifier found this one.
    origin: Literal["generator", "verifier"] = "generator"
    # Anchors back into the original (qa/anchors.py): the 1-based PDF page the quote starts
    # on and, when it crosses pages, the one it ends on; for a document whose metadata has a
    # URL, that page with a text fragment (#:~:text=) a browser scrolls to and highlights.
    page: int | None = None
    end_page: int | None = None
    link: str | None = None


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
    # Which generator drafted it and what that cost: passages shown, tokens, tokens/s.
    generation: dict[str, Any] = field(default_factory=dict)
