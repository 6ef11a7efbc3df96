"""Where answers are made: retrieve → abstain or draft → verify → a cited answer."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Sequence

from citeqa.index.retriever import HybridRetriever
from citeqa.index.types import Embedder, Hit, Store
from citeqa.qa.citations import SupportScorer, verify
from citeqa.qa.registry import GeneratorPool
from citeqa.qa.short_answer import extract_short_answer
from citeqa.qa.streaming import AnswerStream, Drafting, verifier_for
from citeqa.qa.types import ChatTurn, Citation, Draft, Passage, ShortAnswer, VerifiedAnswer

NO_ANSWER = "The indexed documents do not contain an answer to this question."


@dataclass(frozen=True)
class AnswerSettings:
    # Abstain unless the best retrieved sentence has at least this cosine similarity to the
    # question (all-MiniLM-L6-v2 with title-prefixed sentences). Calibrated with
    # `citeqa eval --negatives 0.2` on SQuAD dev: the threshold with the best accuracy
    # (right first citations + right abstentions); see docs/EVALUATION.md.
    min_similarity: float = 0.425
    # A cited claim needs this support from its quote (qa/citations.py: 0.75 × lexical
    # recall + 0.25 × cosine; measured in docs/GENERATORS.md).
    min_support: float = 0.5
    # Give a claim the generator left uncited the shown passage that supports it best.
    attribute_uncited: bool = True


def support_of(hits: Sequence[Hit]) -> float:
    """The strongest absolute evidence among the hits: their best cosine similarity."""
    return max((h.dense_score for h in hits if h.dense_score is not None), default=0.0)


class QuestionAnswerer:
    def __init__(self, retriever: HybridRetriever, store: Store, generators: GeneratorPool, settings: AnswerSettings,
                 embedder: Embedder | None = None):
        self.retriever = retriever
        self.store = store
        self.generators = generators
        self.settings = settings
        self.embedder = embedder  # for the embedding half of support; lexical only without it

    def ask(self, question: str, top_k: int, history: Sequence[ChatTurn] = (), generator: str | None = None,
            options: dict[str, Any] | None = None, context: str | None = None) -> VerifiedAnswer:
        """Raises UnknownGenerator, InvalidGeneratorOptions or GeneratorError (before any
        work is done when the generator or its options are wrong). ``context``: the earlier
        question a chat follow-up leans on (qa/followup.py), used to choose documents."""
        chosen, parsed = self.generators.get(generator, options)
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        passages = self._retrieve(question, top_k, timings, context)
        if not passages:
            return self._abstain(chosen.name, timings, t0)
        t2 = time.perf_counter()
        draft = chosen.generate(question, passages, history, parsed)
        timings["generate"] = (time.perf_counter() - t2) * 1000
        return self.finish(question, chosen.name, draft, passages, timings, t0)

    def stream(self, question: str, top_k: int, history: Sequence[ChatTurn] = (), generator: str | None = None,
               options: dict[str, Any] | None = None, context: str | None = None) -> AnswerStream:
        """``ask``, claim by claim as the generator writes (qa/streaming.py). Wrong names
        and options raise here, before anything is streamed."""
        chosen, parsed = self.generators.get(generator, options)
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        passages = self._retrieve(question, top_k, timings, context)
        if not passages:
            return AnswerStream(self._abstain(chosen.name, timings, t0))
        scorer = SupportScorer(self.embedder, question)
        t2 = time.perf_counter()
        draft_stream = chosen.stream(question, passages, history, parsed)

        def finish(draft: Draft) -> VerifiedAnswer:
            timings["generate"] = (time.perf_counter() - t2) * 1000
            return self.finish(question, chosen.name, draft, passages, timings, t0, scorer)

        check = verifier_for(passages, self.store, self.settings.min_support, self.settings.attribute_uncited,
                             draft_stream.shown, scorer)
        return AnswerStream(Drafting(draft_stream, check, finish))

    def _retrieve(self, query: str, top_k: int, timings: dict[str, float], context: str | None = None) -> list[Passage]:
        """Passages to answer from, or none when the evidence is too weak to answer."""
        t0 = time.perf_counter()
        vector = self.retriever.embed_query(query)
        t1 = time.perf_counter()
        hits = self.retriever.search(query, top_k, vector=vector, context=context)
        weak = not hits or support_of(hits) < self.settings.min_similarity
        passages = [] if weak else self.passages(hits)
        timings["embed"] = (t1 - t0) * 1000
        timings["retrieve"] = (time.perf_counter() - t1) * 1000
        return passages

    def _abstain(self, generator: str, timings: dict[str, float], t0: float) -> VerifiedAnswer:
        timings["total"] = (time.perf_counter() - t0) * 1000
        return VerifiedAnswer(NO_ANSWER, "unsupported", [], 0, _rounded(timings),
                              generation={"generator": generator, "passages_shown": 0})

    def passages(self, hits: Sequence[Hit]) -> list[Passage]:
        """Hits numbered from 1, with their documents' titles (language models read them)."""
        titles: dict[tuple[str, str], str] = {}
        for h in hits:
            key = (h.sentence.doc_id, h.sentence.doc_version)
            if key not in titles:
                doc = self.store.document(*key)
                titles[key] = doc.title if doc else ""
        return [Passage(number=i, hit=h, title=titles[(h.sentence.doc_id, h.sentence.doc_version)])
                for i, h in enumerate(hits, start=1)]

    def finish(self, question: str, generator: str, draft: Draft, passages: Sequence[Passage],
               timings: dict[str, float], t0: float, scorer: SupportScorer | None = None) -> VerifiedAnswer:
        """Verify a draft into the answer that is returned."""
        t3 = time.perf_counter()
        checked = verify(draft, passages, self.store, self.settings.min_support,
                         scorer or SupportScorer(self.embedder, question), attribute=self.settings.attribute_uncited)
        t4 = time.perf_counter()
        timings["verify"] = (t4 - t3) * 1000
        timings["total"] = (t4 - t0) * 1000
        generation = {"generator": generator, "passages_shown": len(passages) if draft.shown is None else draft.shown,
                      **draft.usage}
        if checked.status == "unsupported":
            return VerifiedAnswer(NO_ANSWER, "unsupported", [], checked.dropped, _rounded(timings),
                                  generation=generation)
        short = short_answer(question, checked.citations[0]) if checked.citations else None
        return VerifiedAnswer(checked.answer, checked.status, checked.citations, checked.dropped, _rounded(timings),
                              short, generation)


def short_answer(question: str, citation: Citation) -> ShortAnswer | None:
    """The short answer inside a verified citation's quote, in document offsets."""
    span = extract_short_answer(question, citation.quote)
    if span is None:
        return None
    start, end = citation.start + span[0], citation.start + span[1]
    return ShortAnswer(citation.quote[span[0]:span[1]], citation.doc_id, citation.doc_version, start, end)


def _rounded(timings: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 2) for k, v in timings.items()}
