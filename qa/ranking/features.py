"""The learned ranker's features: cheap, named signals of how well one retrieved sentence
answers a question.

Every feature comes from what retrieval already computed (cosine, BM25s, ranks) or from
word counts over the candidates themselves: nothing here runs a model, so ranking costs
well under a millisecond per candidate. Term weights are an IDF over the question's own
candidate pool (plus their neighbours), not over a corpus: it needs no statistics from
the store and says which of the question's words are rare *among the sentences that
compete*, which is what separates them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Mapping, Sequence

from citeqa.index.retriever import CandidatePool, Pooled
from citeqa.index.text import STOPWORDS, TOKEN, tokens
from citeqa.index.types import Sentence
from citeqa.qa.answer_types import expected_types, type_match
from citeqa.qa.generators.extractive import is_heading
from citeqa.qa.ranking.types import Candidate

# The order of the model's weights (qa/ranking/learned_ranker.json names them too).
FEATURES: tuple[str, ...] = (
    "cosine",  # dense cosine of question and (title-prefixed) sentence: absolute
    "cosine_gap",  # cosine minus the best cosine of the pool: relative
    "lexical",  # sentence BM25 / the pool's best sentence BM25
    "document",  # document BM25 / the pool's best document BM25
    "coverage",  # IDF-weighted share of the question's content words in the sentence
    "coverage_context",  # … in the sentence and its two neighbours
    "coverage_gap",  # coverage minus the pool's best coverage
    "bigram_coverage",  # share of the question's adjacent content-word pairs adjacent in the sentence
    "document_coverage",  # the best coverage of any candidate of the same document
    "document_candidates",  # log(1 + candidates from the same document): a document about the question
    "missing_terms",  # share of the question's content words found in no candidate at all
    "heading",  # a headline, caption or byline: shares words, states nothing
    "first_sentence",  # the document's first sentence
    "position",  # log(1 + sentence index)
    "length",  # log(1 + words)
    "dense_rank",  # 1 / rank among the dense candidates (0: not among them)
    "lexical_rank",
    "document_rank",
    "answer_type",  # holds a mention of the expected answer type (qa/answer_types.py), else 0
)

# The texts of a sentence's neighbours (previous and next): what coverage_context reads.
Neighbours = Callable[[Sentence], Sequence[str]]
# The answer-type signal for a sentence (0..1), when the language analysis is available.
TypeMatch = Callable[[Sentence], float]


def stem(word: str) -> str:
    """A five-letter prefix: folds "troops"/"troop", "attacked"/"attacks" without a
    language-specific stemmer (the prefix rule of Lovins-style truncation)."""
    return word[:5]


def terms(text: str) -> frozenset[str]:
    return profile(text).terms


@dataclass(frozen=True)
class Profile:
    """What the features read of one sentence's text, computed once per text."""

    terms: frozenset[str]
    bigrams: frozenset[tuple[str, str]]
    words: int
    heading: bool


# Sentences recur across questions (the same collection answers them all): tokenising one
# costs ~50 µs, a pool and its neighbours hold a few hundred. 64k profiles are a few MB.
@lru_cache(maxsize=65536)
def profile(text: str) -> Profile:
    words = TOKEN.findall(text.lower())
    content = [w[:5] for w in words if w not in STOPWORDS]
    return Profile(frozenset(content), frozenset(zip(content, content[1:], strict=False)), len(words), is_heading(text))


@dataclass(frozen=True)
class QuestionTerms:
    """The question's content terms and their weights over one candidate pool."""

    weights: Mapping[str, float]
    unseen: float  # the share of the weight that no candidate holds

    def coverage(self, words: frozenset[str]) -> float:
        total = sum(self.weights.values())
        return sum(w for t, w in self.weights.items() if t in words) / total if total else 0.0


def question_terms(question: str, pool_terms: Sequence[frozenset[str]]) -> QuestionTerms:
    asked = terms(question) or {stem(w) for w in tokens(question)}
    n = len(pool_terms)
    df = {t: sum(t in s for s in pool_terms) for t in asked}
    # A word in no candidate is the rarest of all: it weighs most, and pulls every candidate's
    # coverage down (little in the collection speaks of it: a signal for abstaining).
    weights = {t: math.log(1.0 + (n + 1) / (df[t] + 0.5)) for t in asked}
    total = sum(weights.values())
    unseen = sum(w for t, w in weights.items() if df[t] == 0) / total if total else 1.0
    return QuestionTerms(weights, unseen)


def candidate_features(question: str, pool: CandidatePool, neighbours: Neighbours | None = None,
                       type_match: TypeMatch | None = None, titles: Mapping[str, str] | None = None) -> list[Candidate]:
    """The pool's candidates (in the pool's order) with their features (FEATURES names them)."""
    items = pool.items
    if not items:
        return []
    profiles = [profile(p.hit.sentence.text) for p in items]
    sentence_terms = [pr.terms for pr in profiles]
    context_terms = [
        words.union(*(terms(t) for t in neighbours(p.hit.sentence))) if neighbours else words
        for p, words in zip(items, sentence_terms, strict=True)
    ]
    asked = question_terms(question, context_terms)
    coverage = [asked.coverage(words) for words in sentence_terms]
    best_coverage = max(coverage)
    pairs = profile(question).bigrams
    by_document: dict[str, list[float]] = {}
    for p, cov in zip(items, coverage, strict=True):
        by_document.setdefault(p.hit.sentence.doc_id, []).append(cov)
    best_cosine = max(p.hit.dense_score or 0.0 for p in items)
    out = []
    for p, pr, cov, ctx in zip(items, profiles, coverage, context_terms, strict=True):
        sentence = p.hit.sentence
        cosine = p.hit.dense_score or 0.0
        features = {
            "cosine": cosine,
            "cosine_gap": cosine - best_cosine,
            "lexical": (p.hit.lexical_score or 0.0) / pool.top_lexical if pool.top_lexical > 0 else 0.0,
            "document": p.document_score / pool.top_document if pool.top_document > 0 else 0.0,
            "coverage": cov,
            "coverage_context": asked.coverage(ctx),
            "coverage_gap": cov - best_coverage,
            "bigram_coverage": len(pairs & pr.bigrams) / len(pairs) if pairs else 0.0,
            "document_coverage": max(by_document[sentence.doc_id]),
            "document_candidates": math.log1p(len(by_document[sentence.doc_id])),
            "missing_terms": asked.unseen,
            "heading": float(pr.heading),
            "first_sentence": float(sentence.index == 0),
            "position": math.log1p(sentence.index),
            "length": math.log1p(pr.words),
            "dense_rank": _inverse(p.dense_rank),
            "lexical_rank": _inverse(p.lexical_rank),
            "document_rank": _inverse(p.document_rank),
            "answer_type": type_match(sentence) if type_match else 0.0,
        }
        out.append(Candidate(hit=p.hit, title=(titles or {}).get(sentence.doc_id, ""), features=features))
    return out


def answer_type_of(question: str) -> TypeMatch | None:
    """The answer-type signal of a question (qa/answer_types.py), read from each sentence's
    stored mentions (found at ingest: no model runs here); None when the question expects no
    particular type (why/how questions, "what" with an unknown head)."""
    expected = expected_types(question)
    if not expected:
        return None
    return lambda sentence: type_match(expected, sentence.mentions, sentence.text, question)


def _inverse(rank: int | None) -> float:
    return 1.0 / rank if rank else 0.0


def neighbours_from(sentences: Sequence[Sentence]) -> Neighbours:
    """Neighbour text from a list of sentences (a document's, or several documents')."""
    by_key = {(s.doc_id, s.doc_version, s.index): s.text for s in sentences}

    def around(sentence: Sentence) -> list[str]:
        key = (sentence.doc_id, sentence.doc_version)
        return [text for d in (-1, 1) if (text := by_key.get((*key, sentence.index + d))) is not None]

    return around


def pooled_documents(pool: CandidatePool) -> list[str]:
    """The distinct doc_ids of a pool, in its order."""
    return list(dict.fromkeys(p.hit.sentence.doc_id for p in pool.items))


__all__ = ["FEATURES", "Candidate", "Pooled", "answer_type_of", "candidate_features", "neighbours_from",
           "pooled_documents"]
