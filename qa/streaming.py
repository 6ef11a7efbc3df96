"""A verified answer as it is made: the draft streams in, and each claim is passed on once
it is complete and verified, with the citations it earned.

The streamed text is the non-streamed answer, piece by piece: after each complete claim
the draft so far is verified again (verification is deterministic and works claim by
claim, so the verified prefix only grows), and what is new is sent. Text before the first
verified citation is held back, because an answer with no citation at all becomes the
"no answer" sentence. Should a later claim change what was already sent (a model that puts
its markers after the period: "X. [1]"), nothing more is sent until the end, and the
final event carries the whole answer.

An answer nobody waits for any more (its client left) is cancelled: reading stops before
the generator's next piece, a generator still waiting for its model never starts (when its
draft is ``Stoppable``), and nothing is verified.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from typing import Callable, Generator, Iterator, Protocol, Sequence, runtime_checkable

from citeqa.index.types import Corpus
from citeqa.qa.citations import MARKER_GROUP, SupportScorer, Verification, verify
from citeqa.qa.types import Citation, Draft, DraftStream, Passage, VerifiedAnswer


@dataclass(frozen=True)
class AnswerDelta:
    text: str
    citations: list[Citation]  # verified citations whose markers first appear in ``text``


_SENTENCE_END = re.compile(r"[.!?…](?=\s+[^\s\[])")


def complete_until(text: str) -> int:
    """Where the last complete claim of a growing draft ends: after a marker group that
    something other than another marker follows, or after a sentence end that the next
    sentence has begun to follow (a marker could still come right after a bare period)."""
    boundary = 0
    for group in MARKER_GROUP.finditer(text):
        rest = text[group.end():]
        if rest.strip() and not rest.lstrip().startswith("["):
            boundary = group.end()
    for end in _SENTENCE_END.finditer(text, boundary):
        boundary = end.end()
    return boundary


@runtime_checkable
class Stoppable(Protocol):
    """A draft that another thread can stop (qa/generators/chat_model.py): it ends before its
    next piece, and if it is still waiting for its model, it never starts. Any other draft
    is cancelled between its pieces alone."""

    def stop(self) -> None: ...


@dataclass(frozen=True)
class Drafting:
    """A generator at work: its pieces, the check run on each complete prefix of the draft,
    and the step that turns the whole draft into the answer."""

    draft: DraftStream
    check: Callable[[str], Verification]
    finish: Callable[[Draft], VerifiedAnswer]


class AnswerStream:
    """Iterate for :class:`AnswerDelta`s; afterwards ``result`` is the whole answer, equal to
    what the non-streaming path returns, which ``answer()`` gives without streaming.

    ``cancel()`` may come from any thread, while another reads: the reading ends before the
    generator's next piece, with no result. ``next_delta()`` and ``close()`` are for a
    consumer that reads from worker threads and may give up at any moment (an HTTP client
    that leaves): a generator can only be closed by the thread reading it, between pieces,
    so ``close()`` cancels, waits for a ``next_delta()`` still running, then closes.

    Made from a :class:`Drafting`, or from the answer itself when it was decided before any
    generator ran (an abstention): then nothing is streamed."""

    def __init__(self, source: Drafting | VerifiedAnswer):
        self._drafting = source if isinstance(source, Drafting) else None
        self.result: VerifiedAnswer | None = source if isinstance(source, VerifiedAnswer) else None
        self.first_delta_ms: float | None = None
        self._cancelled = threading.Event()
        self._stepping = threading.Lock()  # held by the thread inside next_delta()
        self._deltas: Generator[AnswerDelta, None, None] | None = None

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def cancel(self) -> None:
        """The answer is no longer wanted. Safe from any thread; the reading thread stops."""
        self._cancelled.set()
        if self._drafting is not None and isinstance(self._drafting.draft, Stoppable):
            self._drafting.draft.stop()

    def _read(self, draft: DraftStream) -> Iterator[str]:
        """The draft's pieces until it ends or this stream is cancelled (looked at before
        each piece, the first too: a stream cancelled before it starts never runs the model)."""
        pieces = iter(draft)
        while not self._cancelled.is_set():
            piece = next(pieces, None)
            if piece is None:
                return
            yield piece

    def answer(self) -> VerifiedAnswer | None:
        """The whole answer, verified once at the end (nothing is sent before it is whole,
        so claims are not checked one by one); None if cancelled first."""
        drafting = self._drafting
        if drafting is None:
            return self.result
        try:
            for _ in self._read(drafting.draft):
                pass
        finally:
            drafting.draft.close()
        if self._cancelled.is_set():
            return None
        self.result = drafting.finish(drafting.draft.draft())
        return self.result

    def __iter__(self) -> Generator[AnswerDelta, None, None]:
        drafting = self._drafting
        if drafting is None:  # abstained before generating
            return
        t0 = time.perf_counter()
        text = ""
        sent = ""
        known: set[tuple[int, str, int]] = set()
        consistent = True
        checked_upto = 0
        try:
            for piece in self._read(drafting.draft):
                text += piece
                upto = complete_until(text)
                if not consistent or upto == checked_upto:
                    continue
                checked_upto = upto
                checked = drafting.check(text[:upto])
                if not checked.citations:
                    continue
                if not checked.answer.startswith(sent):
                    consistent = False
                    continue
                delta = self._delta(checked.answer[len(sent):], checked.citations, known)
                if delta.text:
                    if self.first_delta_ms is None:
                        self.first_delta_ms = round((time.perf_counter() - t0) * 1000, 2)
                    sent += delta.text
                    yield delta
        finally:
            drafting.draft.close()
        if self._cancelled.is_set():
            return  # nobody is reading: nothing is verified
        self.result = drafting.finish(drafting.draft.draft())
        if consistent and self.result.answer.startswith(sent):
            rest = self._delta(self.result.answer[len(sent):], self.result.citations, known)
            if rest.text or rest.citations:
                yield rest

    def next_delta(self) -> AnswerDelta | None:
        """The next delta, or None when there are no more (the end, or cancelled)."""
        with self._stepping:
            if self._deltas is None:
                self._deltas = self.__iter__()
            return next(self._deltas, None)

    @staticmethod
    def _delta(text: str, citations: list[Citation], known: set[tuple[int, str, int]]) -> AnswerDelta:
        new = []
        for c in citations:
            key = (c.marker, c.sentence_id, c.answer_start)
            if key not in known:
                known.add(key)
                new.append(c)
        return AnswerDelta(text, new)

    def close(self) -> None:
        """Cancels and closes the generator, which releases its model or upstream; waits for
        a ``next_delta()`` still running in another thread (cancelled, it soon returns)."""
        self.cancel()
        with self._stepping:
            if self._deltas is not None:
                self._deltas.close()
            elif self._drafting is not None:
                self._drafting.draft.close()


def verifier_for(passages: Sequence[Passage], store: Corpus, min_support: float, attribute: bool,
                 shown: int | None, scorer: SupportScorer) -> Callable[[str], Verification]:
    """The check the stream runs on each complete prefix: the same ``verify`` as the end."""

    def check(text: str) -> Verification:
        return verify(Draft(text, shown=shown), passages, store, min_support, scorer, attribute=attribute)

    return check
