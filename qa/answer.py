"""Where answers are made: retrieve → abstain or draft → verify → a cited answer."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

from index.retriever import HybridRetriever
from index.types import Hit, Store
from qa.citations import verify
from qa.short_answer import extract_short_answer
from qa.types import ChatTurn, Citation, Generator, Passage, ShortAnswer, VerifiedAnswer

NO_ANSWER = "The indexed documents do not contain an answer to this question."


@dataclass(frozen=True)
class AnswerSettings:
    # Abstain unless the best retrieved sentence has at least this cosine similarity to the
    # question (all-MiniLM-L6-v2 with title-prefixed sentences). Calibrated with
    # `citeqa eval --negatives 0.2` on SQuAD dev: the threshold with the best accuracy
    # (right first citations + right abstentions); see docs/EVALUATION.md.
    min_similarity: float = 0.425
    # A cited claim needs this share of its content words in the quoted sentence.
    min_support: float = 0.5


def support_of(hits: Sequence[Hit]) -> float:
    """The strongest absolute evidence among the hits: their best cosine similarity."""
    return max((h.dense_score for h in hits if h.dense_score is not None), default=0.0)


class QuestionAnswerer:
    def __init__(self, retriever: HybridRetriever, store: Store, generator: Generator, settings: AnswerSettings):
        self.retriever = retriever
        self.store = store
        self.generator = generator
        self.settings = settings

    def ask(self, question: str, top_k: int, history: Sequence[ChatTurn] = ()) -> VerifiedAnswer:
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        vector = self.retriever.embed_query(question)
        t1 = time.perf_counter()
        hits = self.retriever.search(question, top_k, vector=vector)
        t2 = time.perf_counter()
        timings["embed"] = (t1 - t0) * 1000
        timings["retrieve"] = (t2 - t1) * 1000
        if not hits or support_of(hits) < self.settings.min_similarity:
            timings["total"] = (time.perf_counter() - t0) * 1000
            return VerifiedAnswer(NO_ANSWER, "unsupported", [], 0, _rounded(timings))
        passages = [Passage(number=i, hit=h) for i, h in enumerate(hits, start=1)]
        draft = self.generator.generate(question, passages, history)
        t3 = time.perf_counter()
        checked = verify(draft, passages, self.store, self.settings.min_support)
        t4 = time.perf_counter()
        timings["generate"] = (t3 - t2) * 1000
        timings["verify"] = (t4 - t3) * 1000
        timings["total"] = (t4 - t0) * 1000
        if checked.status == "unsupported":
            return VerifiedAnswer(NO_ANSWER, "unsupported", [], checked.dropped, _rounded(timings))
        short = short_answer(question, checked.citations[0]) if checked.citations else None
        return VerifiedAnswer(checked.answer, checked.status, checked.citations, checked.dropped, _rounded(timings), short)


def short_answer(question: str, citation: Citation) -> ShortAnswer | None:
    """The short answer inside a verified citation's quote, in document offsets."""
    span = extract_short_answer(question, citation.quote)
    if span is None:
        return None
    start, end = citation.start + span[0], citation.start + span[1]
    return ShortAnswer(citation.quote[span[0]:span[1]], citation.doc_id, citation.doc_version, start, end)


def _rounded(timings: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 2) for k, v in timings.items()}
