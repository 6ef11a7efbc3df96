"""The learned ranker's features: cheap, named signals of how well one retrieved sentence
answers a question.

Every feature comes from what retrieval already computed (cosine, BM25s, ranks) or from
word counts over the candidates themselves: nothing here runs a model, so ranking costs
well under a millisecond per candidate. Term weights are an IDF over the question's own
candidate pool (plus their neighbours), not over a corpus: it needs no statistics from
the store and says which of the question's words are rare *among the sentences that
compete*, which is what separates them.

Words are matched the way a reader would: by a five-letter prefix ("troops"/"troop"), a
multi-word name by its initials ("NIS" covers "National Intelligence Service"), and a word
found nowhere in the pool by the pool's word one typo away ("recieve"/"receive"; words of
five letters or more: shorter ones one edit apart are usually other words, "send"/"sent").
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import AbstractSet, Callable, Mapping, Sequence

from citeqa.index.retriever import CandidatePool, Pooled
from citeqa.index.rows import labelled
from citeqa.index.text import STOPWORDS, TOKEN, tokens
from citeqa.index.types import Corpus, Sentence
from citeqa.qa.answer_types import expected_types, subject_text, type_match
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
    "first_mention",  # weighted share of the question's terms this is its document's first candidate to hold
    "rare_coverage",  # holds the question's rarest term found in the pool (1/0)
    "type_coverage",  # answer_type × coverage: the expected kind of answer, about the question's subject
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


def key_terms(question: str, n: int) -> list[str]:
    """The stems of the question's ``n`` longest content words, longest first (the first of
    equal length first): the likeliest to be rare, so those a sentence about the question
    should hold ("tungsten" in "what is the boiling point of tungsten")."""
    words = [w for w in TOKEN.findall(question.lower()) if w not in STOPWORDS]
    return [stem(w) for w in sorted(words, key=len, reverse=True)[:n]]


@dataclass(frozen=True)
class Profile:
    """What the features read of one sentence's text, computed once per text."""

    terms: frozenset[str]
    bigrams: frozenset[tuple[str, str]]
    words: int
    heading: bool


_CONNECTIVES = frozenset({"of", "for", "the", "and", "on", "de"})
# A word that may start with a capital: a superset of those that do (cheap to count).
_MAYBE_CAPITAL = re.compile(r"(?<!\w)[^\W\d_a-z]")


def acronyms(text: str) -> set[str]:
    """The initials of the text's multi-word names, lower-cased: "National Intelligence
    Service" → "nis" (and of every run of 3+ of its capitalised words), "Institute for the
    Study of War" → "isw". A question asking "what is the NIS" then covers the sentence
    that spells the name out, as a reader would match it."""
    found: set[str] = set()
    # Many sentences (~40% of SQuAD's) have fewer than three words that could be capitalised
    # (a letter other than a-z after a non-word), so no run of three: skip the word loop.
    if len(_MAYBE_CAPITAL.findall(text)) < 3:
        return found
    initials: list[str] = []  # of the current run's capitalised words
    for token in TOKEN.findall(text):
        if token[0].isupper():
            initials.append(token[0].lower())
        elif initials and token not in _CONNECTIVES:
            _add_initials(found, initials)
            initials = []
    _add_initials(found, initials)
    return found


def _add_initials(found: set[str], initials: list[str]) -> None:
    """Every run of 3 to 6 consecutive initials of one name."""
    n = len(initials)
    for i in range(n - 2):
        for j in range(i + 3, min(n, i + 6) + 1):
            found.add("".join(initials[i:j]))


# Sentences recur across questions (the same collection answers them all): tokenising one
# costs ~50 µs, a pool and its neighbours hold a few hundred. 64k profiles are a few MB.
@lru_cache(maxsize=65536)
def profile(text: str) -> Profile:
    words = TOKEN.findall(text.lower())
    content = [w[:5] for w in words if w not in STOPWORDS]
    return Profile(frozenset(content) | {a[:5] for a in acronyms(text)},
                   frozenset(zip(content, content[1:], strict=False)), len(words), is_heading(text))


def near_miss(a: str, b: str) -> bool:
    """One edit apart (a substitution, insertion, deletion or swap of neighbours): the
    typo that the five-letter prefix does not absorb ("recieve" vs "receive")."""
    if a == b or abs(len(a) - len(b)) > 1 or a[:1] != b[:1]:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1
                                  and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]])
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return any(long_[:i] + long_[i + 1:] == short for i in range(len(long_)))


def _stand_in(term: str, seen: frozenset[str]) -> str:
    """The first (in sorted order: the same every time) word of ``seen`` one typo away from
    ``term``, else ``term`` itself."""
    close = sorted(s for s in seen if s[:1] == term[:1] and abs(len(s) - len(term)) <= 1)
    return next((s for s in close if near_miss(term, s)), term)


@dataclass(frozen=True)
class QuestionTerms:
    """The question's content terms and their weights over one candidate pool."""

    weights: Mapping[str, float]
    unseen: float  # the share of the weight that no candidate holds

    @cached_property
    def total(self) -> float:
        # fsum: exact, so the same whatever order the set's hash seed gives the terms.
        return math.fsum(self.weights.values())

    @cached_property
    def terms(self) -> frozenset[str]:
        return frozenset(self.weights)

    def coverage(self, words: frozenset[str]) -> float:
        # Asked of every candidate twice (alone, with its neighbours): the total is summed
        # once, and the intersection is of two frozensets (with a dict's keys it costs twice).
        total = self.total
        weights = self.weights
        return math.fsum([weights[t] for t in words & self.terms]) / total if total else 0.0


def question_terms(question: str, pool_terms: Sequence[frozenset[str]]) -> QuestionTerms:
    seen: frozenset[str] = frozenset().union(*pool_terms) if pool_terms else frozenset()
    return _weighted(_asked(question, seen), pool_terms)


def _asked(question: str, seen: frozenset[str]) -> AbstractSet[str]:
    """The question's terms; a misspelt word ("recieve") found nowhere in ``seen`` (the
    pool's words) stands for the pool's word one edit away."""
    subject = subject_text(question)
    asked = terms(subject) or {stem(w) for w in tokens(subject)}
    if not asked <= seen:
        asked = {t if t in seen or len(t) < 5 else _stand_in(t, seen) for t in asked}
    return asked


def _weighted(asked: AbstractSet[str], pool_terms: Sequence[AbstractSet[str]]) -> QuestionTerms:
    """``asked`` weighted over the pool; only whether each pool member holds each asked
    term is read, so ``pool_terms`` may be cut down to the asked terms."""
    n = len(pool_terms)
    df = {t: sum(t in s for s in pool_terms) for t in asked}
    # A word in no candidate is the rarest of all: it weighs most, and pulls every candidate's
    # coverage down (little in the collection speaks of it: a signal for abstaining).
    weights = {t: math.log(1.0 + (n + 1) / (df[t] + 0.5)) for t in asked}
    total = math.fsum(weights.values())
    unseen = math.fsum(w for t, w in weights.items() if df[t] == 0) / total if total else 1.0
    return QuestionTerms(weights, unseen)


def candidate_features(question: str, pool: CandidatePool, neighbours: Neighbours | None = None,
                       type_match: TypeMatch | None = None, titles: Mapping[str, str] | None = None) -> list[Candidate]:
    """The pool's candidates (in the pool's order) with their features (FEATURES names them;
    the answer-type ones only for sentences that were analysed)."""
    items = pool.items
    if not items:
        return []
    profiles = [profile(p.hit.sentence.text) for p in items]
    sentence_terms = [pr.terms for pr in profiles]
    around = [[terms(t) for t in neighbours(p.hit.sentence)] if neighbours else [] for p in items]
    # A candidate's context is its words and its neighbours', but only the question's terms
    # among them are ever read: those are gathered, instead of a union of every word of
    # the three sentences per candidate (a sixth of the features' time, by cProfile).
    asked_terms = _asked(question, frozenset().union(*sentence_terms, *(t for near in around for t in near)))
    wanted = frozenset(asked_terms)
    context_terms = [words & wanted if not near else frozenset().union(words & wanted, *(t & wanted for t in near))
                     for words, near in zip(sentence_terms, around, strict=True)]
    asked = _weighted(asked_terms, context_terms)
    coverage = [asked.coverage(words) for words in sentence_terms]
    best_coverage = max(coverage)
    pairs = profile(subject_text(question)).bigrams
    by_document: dict[str, list[float]] = {}
    for p, cov in zip(items, coverage, strict=True):
        by_document.setdefault(p.hit.sentence.doc_id, []).append(cov)
    best_cosine = max(p.hit.dense_score or 0.0 for p in items)
    first = _first_mentions(items, sentence_terms, asked)
    seen_weights = {t: w for t, w in asked.weights.items() if any(t in words for words in sentence_terms)}
    rarest = max(seen_weights, key=lambda t: (seen_weights[t], t)) if seen_weights else None
    out = []
    for p, pr, cov, ctx, mention in zip(items, profiles, coverage, context_terms, first, strict=True):
        sentence = p.hit.sentence
        cosine = p.hit.dense_score or 0.0
        # A sentence never analysed (stored before mentions were) has an unknown answer type,
        # not a missing one: its type features are left out, and the ranker fills in the
        # average it was fitted on (qa/ranking/learned.py), so it is neither helped nor hurt.
        kind = (type_match(sentence) if sentence.analysed else None) if type_match else 0.0
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
            "first_mention": mention,
            "rare_coverage": float(rarest is not None and rarest in pr.terms),
        }
        if kind is not None:
            features |= {"answer_type": kind, "type_coverage": kind * cov}
        out.append(Candidate(hit=p.hit, title=(titles or {}).get(sentence.doc_id, ""), features=features))
    return out


def _first_mentions(items: Sequence[Pooled], sentence_terms: Sequence[frozenset[str]],
                    asked: QuestionTerms) -> list[float]:
    """Per candidate, the weighted share of the question's terms for which it is the first
    candidate of its document (by position) to hold them: where a text introduces a name
    ("Alexander Matsegora, Russia's ambassador") it usually says what it is."""
    earliest: dict[tuple[str, str], int] = {}
    for p, words in zip(items, sentence_terms, strict=True):
        for t in words & asked.terms:
            key = (p.hit.sentence.doc_id, t)
            if key not in earliest or p.hit.sentence.index < earliest[key]:
                earliest[key] = p.hit.sentence.index
    total = math.fsum(asked.weights.values())
    return [math.fsum(asked.weights[t] for t in words & asked.terms
                if earliest[(p.hit.sentence.doc_id, t)] == p.hit.sentence.index) / total if total else 0.0
            for p, words in zip(items, sentence_terms, strict=True)]


def answer_type_of(question: str) -> TypeMatch | None:
    """The answer-type signal of a question (qa/answer_types.py), read from each sentence's
    stored mentions (found at ingest: no model runs here); None when the question expects no
    particular type (why/how questions, "what" with an unknown head)."""
    expected = expected_types(question)
    if not expected:
        return None

    def match(sentence: Sentence) -> float:
        # type_match reads only the mentions of the expected labels, and most sentences hold
        # none: find those without decoding the rest (noun chunks, roles).
        found = labelled(sentence.mentions, expected)
        return type_match(expected, found, sentence.text, question) if found else 0.0

    return match


def _inverse(rank: int | None) -> float:
    return 1.0 / rank if rank else 0.0


def neighbours_from(sentences: Sequence[Sentence]) -> Neighbours:
    """Neighbour text from a list of sentences (a document's, or several documents')."""
    return _around({(s.doc_id, s.doc_version, s.index): s.text for s in sentences})


def pool_neighbours(pool: CandidatePool, corpus: Corpus) -> Neighbours:
    """The neighbours of a pool's candidates: the same texts as ``neighbours_from`` of their
    documents' current sentences, but read as texts alone, and only those the pool does not
    hold already (the candidates themselves, and the documents the fusion read whole). It
    read ~300 whole sentence rows a question for the ~100 texts missing."""
    by_key = {(s.doc_id, s.doc_version, s.index): s.text for s in pool.read_sentences}
    by_key.update(((s.doc_id, s.doc_version, s.index), s.text) for s in (p.hit.sentence for p in pool.items))
    whole = frozenset(pool.read_documents)
    wanted = list(dict.fromkeys(
        (s.doc_id, s.index + d) for s in (p.hit.sentence for p in pool.items) if s.doc_id not in whole
        for d in (-1, 1) if s.index + d >= 0 and (s.doc_id, s.doc_version, s.index + d) not in by_key))
    by_key.update(((doc_id, version, index), text) for doc_id, version, index, text in corpus.searchable_texts(wanted))
    return _around(by_key)


def _around(by_key: Mapping[tuple[str, str, int], str]) -> Neighbours:
    def around(sentence: Sentence) -> list[str]:
        key = (sentence.doc_id, sentence.doc_version)
        return [text for d in (-1, 1) if (text := by_key.get((*key, sentence.index + d))) is not None]

    return around


def pooled_documents(pool: CandidatePool) -> list[str]:
    """The distinct doc_ids of a pool, in its order."""
    return list(dict.fromkeys(p.hit.sentence.doc_id for p in pool.items))


__all__ = ["FEATURES", "Candidate", "Pooled", "answer_type_of", "candidate_features", "key_terms", "neighbours_from",
           "pool_neighbours", "pooled_documents", "terms"]
