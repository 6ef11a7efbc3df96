"""Where answers are made: retrieve → rank → abstain or draft → verify → a cited answer.

Retrieval gives a wide candidate pool (index/retriever.py ``pool``); the reranker (the
learned ranker by default, qa/ranking/) orders it and gives each candidate its probability
of answering the question. The answer abstains when the best candidate's probability is
under ``min_probability``; otherwise the ``top_k`` best are the passages, each hit's
``score`` now that probability (what /v1/ask's citations, /v1/search and chat show).
"""

from __future__ import annotations

import copy
import functools
import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Sequence

from citeqa.index.embed_batcher import EmbedBatcher
from citeqa.index.fresh_mentions import with_mentions
from citeqa.index.language import Analyzer
from citeqa.index.retriever import HybridRetriever
from citeqa.index.types import Corpus, Embedder, Hit, Mention
from citeqa.qa.acronyms import asked_abbreviation, explains
from citeqa.qa.answer_lead import SHORT_ANSWER_WEIGHT, with_lead
from citeqa.qa.citations import SupportScorer, verify
from citeqa.qa.ranking.features import (
    answer_type_of,
    candidate_features,
    key_terms,
    pool_neighbours,
    terms,
)
from citeqa.qa.ranking.learned import LearnedRanker
from citeqa.qa.ranking.types import Ranked, Reranker
from citeqa.qa.registry import GeneratorPool
from citeqa.qa.short_answer import (
    asks_count_or_date,
    could_hold_count_or_date,
    extract_short_answer,
    holds_expected_type,
)
from citeqa.qa.streaming import AnswerStream, Drafting, verifier_for
from citeqa.qa.types import ChatTurn, Citation, Draft, Passage, ShortAnswer, VerifiedAnswer

NO_ANSWER = "The indexed documents do not contain an answer to this question."
# The best sentences that may hold the count or date asked for (the extractive answer cites
# up to two).
ASKED_KIND_SENTENCES = 2
# The question's longest content words of which a hit must hold one when none is similar (unrelated).
KEY_TERMS = 2


@dataclass(frozen=True)
class AnswerSettings:
    # Abstain unless the best-ranked sentence has at least this probability of answering
    # the question (the reranker's calibrated probability). None: the reranker's own
    # threshold (the learned ranker's is chosen on SQuAD dev 1-1000 with 20% negatives, see
    # qa/ranking/learned_ranker.json), or 0.5 for a reranker without one.
    min_probability: float | None = None
    # A floor on the best cosine similarity as well, for a pool of unrelated sentences (one
    # document about something else looks good relative to itself): it applies only when
    # none of the hits holds the question's key word either (``unrelated``). Short questions
    # ("what is the ISW", "compensaton?") have low cosines to the very sentence that answers
    # them (0.1-0.2 on the seed article), so a cosine floor alone refused them. No SQuAD dev
    # question 1-1000, answerable or not, has its best cosine under 0.25.
    min_similarity: float = 0.2
    # Candidates (best blend first) the reranker orders; 0: the whole pool.
    rerank_candidates: int = 0
    # A cited claim needs this support from its quote (qa/citations.py: 0.75 × lexical
    # recall + 0.25 × cosine; measured in docs/GENERATORS.md).
    min_support: float = 0.5
    # Give a claim the generator left uncited the shown passage that supports it best.
    attribute_uncited: bool = True
    # "How many / when" questions whose best sentences hold no number or date are unsupported
    # (qa/short_answer.py ``asks_count_or_date``), and "what does X stand for" ones whose best
    # sentences neither spell X out nor say what it stands for (qa/acronyms.py): a sentence on the
    # subject that does not hold the kind of thing asked for does not answer it.
    require_asked_kind: bool = True
    # Of the best sentences (qa/answer_lead.py ``LEAD_AMONG``), the answer leads with the one
    # whose log(probability) + this × its best short-answer span's score is highest; 0: the
    # ranker's order. Chosen on SQuAD dev 1-1000 (docs/EVALUATION.md).
    lead_short_answer_weight: float = SHORT_ANSWER_WEIGHT


def support_of(hits: Sequence[Hit]) -> float:
    """The strongest absolute evidence among the hits: their best cosine similarity."""
    return max((h.dense_score for h in hits if h.dense_score is not None), default=0.0)


def unrelated(question: str, hits: Sequence[Hit], min_similarity: float) -> bool:
    """No hit is similar enough (cosine under ``min_similarity``) and none holds one of the
    question's key words (its two longest: "tungsten", "internships", "ISW" spelled out):
    the collection does not speak of what is asked. Two, since the longest may be a
    paraphrase ("is that more than in *previous* years?" of "... compared to prior years")."""
    if support_of(hits) >= min_similarity:
        return False
    keys = key_terms(question, KEY_TERMS)
    return not keys or not any(key in terms(h.sentence.text) for h in hits for key in keys)


class QuestionAnswerer:
    def __init__(self, retriever: HybridRetriever, store: Corpus, generators: GeneratorPool, settings: AnswerSettings,
                 embedder: Embedder | None = None, reranker: Reranker | None = None,
                 analyzer: Analyzer | None = None):
        self.retriever = retriever
        self.store = store
        self.generators = generators
        self.settings = settings
        self.embedder = embedder  # for the embedding half of support; lexical only without it
        self.reranker = reranker if reranker is not None else LearnedRanker()
        self.analyzer = analyzer  # parses the question for its expected answer type; rules alone without it

    def over(self, corpus: Corpus) -> "QuestionAnswerer":
        """This answerer reading ``corpus`` instead (a request's scope: index/scoped_view.py);
        models, generators and settings are shared, so this costs two small objects."""
        scoped = copy.copy(self)
        scoped.retriever = HybridRetriever(corpus, self.retriever.embedder, self.retriever.settings)
        scoped.store = corpus
        return scoped

    def _parse_once(self, question: str) -> Callable[[], Any]:
        """The question's parse (~2.5-5 ms; the lead's choice and the short answer read it),
        made on the first call of what is returned and kept for the request; None without an
        analyzer. (Parsing on a thread of its own while the request embeds measured no faster in
        `citeqa bench`, docs/EVALUATION.md round 8: the model's forward pass for one short
        question is mostly Python, which holds the GIL as the parse does.)"""
        analyzer = self.analyzer
        if analyzer is None:
            return lambda: None
        return functools.cache(lambda: analyzer.question_doc(question))

    def _read_question(self, question: str) -> tuple[Any, Callable[[], Any]]:
        """The question's vector and its parse. Through the services' question batcher both
        are made in one batch with the other requests' questions (index/embed_batcher.py);
        otherwise the parse is made when first asked for (``_parse_once``)."""
        embedder = self.retriever.embedder
        if self.analyzer is not None and isinstance(embedder, EmbedBatcher) and embedder.parse is not None:
            vector, doc = embedder.encode_and_parse(question)
            return vector, lambda: doc
        return self.retriever.embed_query(question), self._parse_once(question)

    @property
    def min_probability(self) -> float:
        if self.settings.min_probability is not None:
            return self.settings.min_probability
        threshold = getattr(self.reranker, "threshold", None)
        return float(threshold) if threshold is not None else 0.5

    def rank(self, query: str, vector: Any = None, context: str | None = None) -> list[Ranked]:
        """Every candidate of the query's pool, best first, with its probability of answering."""
        pool = self.retriever.pool(query, 0, vector, context)
        if self.settings.rerank_candidates:
            pool = replace(pool, items=pool.items[:self.settings.rerank_candidates])
        pool = with_mentions(pool, self.analyzer)  # candidates the backfill has not reached yet: analysed now
        # Only the neighbour texts the pool does not hold are read (features.pool_neighbours).
        neighbours = pool_neighbours(pool, self.store)
        # The expected answer type reads the mentions stored at ingest: no model runs here.
        return self.reranker.rerank(query, candidate_features(query, pool, neighbours, answer_type_of(query)))

    def search(self, query: str, k: int, context: str | None = None) -> list[Hit]:
        """The ``k`` best sentences as the answerer ranks them; ``score`` is the probability."""
        return [replace(r.hit, score=r.probability) for r in self.rank(query, context=context)[:k]]

    def ask(self, question: str, top_k: int, history: Sequence[ChatTurn] = (), generator: str | None = None,
            options: dict[str, Any] | None = None, context: str | None = None) -> VerifiedAnswer:
        """Raises UnknownGenerator, InvalidGeneratorOptions or GeneratorError (before any
        work is done when the generator or its options are wrong). ``context``: the earlier
        question a chat follow-up leans on (qa/followup.py), used to choose documents."""
        chosen, parsed = self.generators.get(generator, options)
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        passages, question_doc = self._retrieve(question, top_k, timings, context)
        if not passages:
            return self._abstain(chosen.name, timings, t0)
        t2 = _parts_end(t0, timings)
        draft = chosen.generate(question, passages, history, parsed)
        timings["generate"] = (time.perf_counter() - t2) * 1000
        return self.finish(question, chosen.name, draft, passages, timings, t0, question_doc=question_doc())

    def stream(self, question: str, top_k: int, history: Sequence[ChatTurn] = (), generator: str | None = None,
               options: dict[str, Any] | None = None, context: str | None = None) -> AnswerStream:
        """``ask``, claim by claim as the generator writes (qa/streaming.py). Wrong names
        and options raise here, before anything is streamed."""
        chosen, parsed = self.generators.get(generator, options)
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        passages, question_doc = self._retrieve(question, top_k, timings, context)
        if not passages:
            return AnswerStream(self._abstain(chosen.name, timings, t0))
        scorer = SupportScorer(self.embedder, question)
        t2 = _parts_end(t0, timings)
        draft_stream = chosen.stream(question, passages, history, parsed)

        def finish(draft: Draft) -> VerifiedAnswer:
            timings["generate"] = (time.perf_counter() - t2) * 1000
            return self.finish(question, chosen.name, draft, passages, timings, t0, scorer, question_doc())

        check = verifier_for(passages, self.store, self.settings.min_support, self.settings.attribute_uncited,
                             draft_stream.shown, scorer)
        return AnswerStream(Drafting(draft_stream, check, finish))

    def _retrieve(self, query: str, top_k: int, timings: dict[str, float],
                  context: str | None = None) -> tuple[list[Passage], Callable[[], Any]]:
        """Passages to answer from, or none when the evidence is too weak to answer; and the
        question's parse (``_parse_once``)."""
        t0 = time.perf_counter()
        vector, question_doc = self._read_question(query)  # "embed" in the timings: the parse is made beside it
        t1 = time.perf_counter()
        ranked = self.rank(query, vector, context)
        hits = [replace(r.hit, score=r.probability) for r in ranked[:top_k]]
        weak = (not hits or hits[0].score < self.min_probability
                or unrelated(query, hits, self.settings.min_similarity)
                or self._lacks_asked_kind(query, hits))
        if not weak:
            hits = with_lead(query, hits, question_doc(), self.settings.lead_short_answer_weight)
        passages = [] if weak else self.passages(hits)
        timings["embed"] = (t1 - t0) * 1000
        timings["retrieve"] = (time.perf_counter() - t1) * 1000
        return passages, question_doc

    def _lacks_asked_kind(self, question: str, hits: Sequence[Hit]) -> bool:
        """A count or date, or what an abbreviation stands for, is asked and none of the best
        sentences holds one (qa/short_answer.py, qa/acronyms.py)."""
        if not self.settings.require_asked_kind:
            return False
        best = hits[:ASKED_KIND_SENTENCES]
        if asks_count_or_date(question) and not any(
                could_hold_count_or_date(question, h.sentence.text, h.sentence.mentions) for h in best):
            return True
        letters = asked_abbreviation(question)
        return letters is not None and not any(explains(letters, h.sentence.text) for h in best)

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
                doc = self.store.document_info(*key)  # the title alone: not the text
                titles[key] = doc.title if doc else ""
        return [Passage(number=i, hit=h, title=titles[(h.sentence.doc_id, h.sentence.doc_version)])
                for i, h in enumerate(hits, start=1)]

    def finish(self, question: str, generator: str, draft: Draft, passages: Sequence[Passage],
               timings: dict[str, float], t0: float, scorer: SupportScorer | None = None,
               question_doc: Any = None) -> VerifiedAnswer:
        """Verify a draft into the answer that is returned. ``question_doc``: the question
        parsed by the analyzer (the short answer reads its expected type); rules without it."""
        t3 = _parts_end(t0, timings)
        checked = verify(draft, passages, self.store, self.settings.min_support,
                         scorer or SupportScorer(self.embedder, question), attribute=self.settings.attribute_uncited)
        t4 = time.perf_counter()
        timings["verify"] = (t4 - t3) * 1000
        generation = {"generator": generator, "passages_shown": len(passages) if draft.shown is None else draft.shown,
                      **draft.usage}
        if checked.status == "unsupported":
            timings["total"] = (t4 - t0) * 1000
            return VerifiedAnswer(NO_ANSWER, "unsupported", [], checked.dropped, _rounded(timings),
                                  generation=generation)
        short = None
        if checked.citations:
            short = short_answer(question, checked.citations, passages, question_doc)
        # The question's tagging and the short answer are part of the answer's time (the
        # bench's HTTP overhead is what lies beyond this total).
        t5 = time.perf_counter()
        timings["short_answer"] = (t5 - t4) * 1000
        timings["total"] = (t5 - t0) * 1000
        return VerifiedAnswer(checked.answer, checked.status, checked.citations, checked.dropped, _rounded(timings),
                              short, generation)


def short_answer(question: str, citation: Citation | Sequence[Citation], passages: Sequence[Passage] = (),
                 question_doc: Any = None) -> ShortAnswer | None:
    """The short answer inside a verified citation's quote, in document offsets. Given the
    answer's citations in order, the first whose sentence holds the kind of thing asked for
    ("how many": a number) gives it, else the first (qa/short_answer.py
    ``holds_expected_type``). ``passages``: where the cited sentences' entities and noun
    chunks (stored at ingest) are found; ``question_doc``: the question parsed by the
    language pipeline (qa/answer_types.py reads its expected answer type). Either may be
    missing: the rules then work alone."""
    cited = [citation] if isinstance(citation, Citation) else list(citation)
    if not cited:
        return None

    def mentions_of(c: Citation) -> Sequence[Mention] | None:
        return next((getattr(p.hit.sentence, "mentions", None) for p in passages
                     if p.hit.sentence.id == c.sentence_id), None)

    chosen = next((c for c in cited if holds_expected_type(question, c.quote, mentions_of(c), question_doc)),
                  cited[0])
    span = extract_short_answer(question, chosen.quote, mentions_of(chosen), question_doc)
    if span is None:
        return None
    start, end = chosen.start + span[0], chosen.start + span[1]
    return ShortAnswer(chosen.quote[span[0]:span[1]], chosen.doc_id, chosen.doc_version, start, end)


def _parts_end(t0: float, timings: dict[str, float]) -> float:
    """When the parts timed so far ended: the next part starts there, so the parts add up
    to the total even when this thread was descheduled between two of them."""
    return t0 + sum(timings.values()) / 1000


def _rounded(timings: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 2) for k, v in timings.items()}
