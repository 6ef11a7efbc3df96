"""Hybrid retrieval: dense (FAISS), sentence BM25 and document BM25, fused.

Two fusions, chosen in settings:
- ``blend`` (default): ``dense_weight * cosine + lexical_weight * bm25 / max(bm25)
  + document_weight * doc_bm25 / max(doc_bm25)`` over the union of the dense and lexical
  candidates and the sentences of the best-matching documents. Candidates found other
  than by FAISS get their exact cosine from the stored vectors, so every hit has one.
- ``rrf``: reciprocal rank fusion (Cormack et al., 2009) of dense and sentence BM25,
  ``sum 1 / (rrf_k + rank)``; needs no calibration but ignores how far apart scores are.
Measured on SQuAD v1.1 dev (../shared/eval/squad_dev.jsonl, open corpus, 10,327 sentences;
weights chosen on questions 1-1000, checked on 1001-2000), search hit@1 / hit@5:
  RRF, plain sentence vectors ............................. 0.655 / 0.864 (all 2,000)
  blend 0.6/0.4, plain vectors ............................ 0.712 / 0.871 (held-out half)
  blend 0.7/0.2 + document BM25 0.3, title-prefixed vectors 0.745 / 0.918 (held-out half)
The dense cosine of every hit is kept: it is the absolute support signal for abstention.

``pool`` returns the whole fused candidate set with each retriever's raw signals (cosine,
sentence BM25, document BM25, ranks): what the learned ranker (qa/ranking/) reorders, so
the answerer and /v1/search rank the same candidates the same way.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import AbstractSet, Literal

import numpy as np

from citeqa.index.types import Corpus, Embedder, Hit, Scored, Sentence

# Threads for parallel_searches: two per question in flight; more questions wait their turn
# (the store's connection pool bounds them as well).
SEARCH_THREADS = 8


@dataclass(frozen=True)
class RetrievalSettings:
    fusion: Literal["blend", "rrf"] = "blend"
    candidates: int = 50  # taken from each retriever before fusion
    rrf_k: int = 60
    dense_weight: float = 0.7
    lexical_weight: float = 0.2
    # BM25 of the whole document (title + text): evidence sits in documents about the question.
    document_weight: float = 0.3
    # Sentences of this many best-matching documents join the candidates.
    documents: int = 5
    # Run the sentence and document BM25 searches on other threads while this one runs the
    # dense search: for a store whose searches run in a database server (PostgreSQL: its
    # processes use their own cores; 1M sentences: hybrid p50/p95 345/1,072 -> 148/427 ms, docs/SCALING.md).
    # An in-process store would only contend for the GIL.
    parallel_searches: bool = False


def for_store(settings: RetrievalSettings, store: object) -> RetrievalSettings:
    """``settings`` with parallel_searches on for a store whose searches run in a database
    server (it says so with ``searches_run_elsewhere``), off otherwise."""
    return replace(settings, parallel_searches=bool(getattr(store, "searches_run_elsewhere", False)))


@dataclass(frozen=True)
class Pooled:
    """One fused candidate: its hit (``score`` = the blend) and the raw signals behind it."""

    hit: Hit
    document_score: float = 0.0  # BM25 of its document (title + text); 0 when not matched
    dense_rank: int | None = None  # 1-based rank among the dense candidates
    lexical_rank: int | None = None
    document_rank: int | None = None  # rank of its document by document BM25


@dataclass(frozen=True)
class CandidatePool:
    """A question's candidates, best blend first, and the per-question maxima the blend
    normalised by (features are relative to them)."""

    items: list[Pooled] = field(default_factory=list)
    top_lexical: float = 0.0
    top_document: float = 0.0
    # Whole documents the fusion already read (the best-matching documents' current
    # sentences): the ranker reads candidates' neighbours from their documents and need not
    # read these again (~15% of that read: the same rows decoded twice).
    read_documents: tuple[str, ...] = ()
    read_sentences: tuple[Sentence, ...] = ()

    def hits(self, k: int) -> list[Hit]:
        return [p.hit for p in self.items[:k]]


class HybridRetriever:
    def __init__(self, store: Corpus, embedder: Embedder, settings: RetrievalSettings | None = None):
        self.store = store
        self.embedder = embedder
        self.settings = settings or RetrievalSettings()

    def embed_query(self, query: str) -> np.ndarray:
        return self.embedder.encode([query])[0]

    def search(self, query: str, k: int, vector: np.ndarray | None = None, context: str | None = None) -> list[Hit]:
        """The ``k`` best sentences for ``query``; pass ``vector`` if it is already embedded.
        ``context`` (earlier turns of a chat) joins the query in choosing documents only:
        a follow-up's sentences are still found by what it asks."""
        if vector is None:
            vector = self.embed_query(query)
        if self.settings.fusion == "rrf":
            n = max(self.settings.candidates, k)
            dense = self.store.dense_search(vector, n)
            lexical = self.store.lexical_search(query, n)
            return self._with_dense_scores(fuse(dense, lexical, k, self.settings), vector)
        return self.pool(query, k, vector, context).hits(k)

    def pool(self, query: str, k: int = 0, vector: np.ndarray | None = None, context: str | None = None,
             exclude: AbstractSet[str] = frozenset()) -> CandidatePool:
        """Every blend candidate (at least ``k``), best blend first, with the signals behind
        it. ``exclude``: doc_ids to act as if they were not indexed (the ranker's fitting
        tool makes negatives this way, without indexing the corpus twice)."""
        if vector is None:
            vector = self.embed_query(query)
        cfg = self.settings
        # Excluded documents' sentences are dropped after the search: ask for that many more.
        n = max(cfg.candidates, k) * (2 if exclude else 1)
        document_query = f"{context} {query}" if context else query
        documents = max(cfg.candidates, cfg.documents) + len(exclude)
        if cfg.parallel_searches:
            lexical_future = _searches().submit(self.store.lexical_search, query, n)
            found_future = _searches().submit(self._documents, document_query, documents)
            dense_found = self.store.dense_search(vector, n)
            lexical_found, found = lexical_future.result(), found_future.result()
        else:
            dense_found = self.store.dense_search(vector, n)
            lexical_found = self.store.lexical_search(query, n)
            found = self._documents(document_query, documents)
        dense = [d for d in dense_found if d.sentence.doc_id not in exclude]
        lexical = [d for d in lexical_found if d.sentence.doc_id not in exclude]
        return self._blend(dense[:max(cfg.candidates, k)], lexical[:max(cfg.candidates, k)], vector, found, exclude)

    def _documents(self, query: str, k: int) -> list[tuple[str, float]]:
        return self.store.lexical_document_search(query, k) if self.settings.document_weight > 0 else []

    def _with_dense_scores(self, hits: list[Hit], vector: np.ndarray) -> list[Hit]:
        """Give lexical-only hits their exact cosine too, as blend does: every hit needs one."""
        missing = [h.sentence for h in hits if h.dense_score is None]
        scores = dict(zip((s.id for s in missing), self.store.dense_scores(vector, missing), strict=True))
        return [replace(h, dense_score=scores[h.sentence.id]) if h.dense_score is None else h for h in hits]

    def _blend(self, dense: list[Scored], lexical: list[Scored], vector: np.ndarray,
               found: list[tuple[str, float]], exclude: AbstractSet[str]) -> CandidatePool:
        cfg = self.settings
        # Sentence.id formats a string each time it is asked: each candidate's is made once.
        dense_ids = [d.sentence.id for d in dense]
        lexical_ids = [item.sentence.id for item in lexical]
        cosine = {key: d.score for key, d in zip(dense_ids, dense, strict=True)}
        sentences = {key: d.sentence for key, d in zip(dense_ids, dense, strict=True)}
        dense_rank = {key: rank for rank, key in enumerate(dense_ids, start=1)}
        lexical_scores = {key: item.score for key, item in zip(lexical_ids, lexical, strict=True)}
        lexical_rank = {key: rank for rank, key in enumerate(lexical_ids, start=1)}
        top_lexical = max(lexical_scores.values(), default=0.0)
        documents = {doc_id: score for doc_id, score in found if doc_id not in exclude}
        document_rank = {doc_id: rank for rank, doc_id in enumerate(documents, start=1)}
        top_document = max(documents.values(), default=0.0)
        read_documents = tuple(list(documents)[:cfg.documents])
        read_sentences = tuple(self.store.current_sentences(list(read_documents))) if read_documents else ()
        extra = {key: item.sentence for key, item in zip(lexical_ids, lexical, strict=True) if key not in cosine}
        for s in read_sentences:
            key = s.id
            if key not in cosine:
                extra[key] = s  # a later row of the same sentence replaces the earlier, as before
        unscored = list(extra.values())
        for key, sentence, exact in zip(extra, unscored, self.store.dense_scores(vector, unscored), strict=True):
            cosine[key] = exact
            sentences[key] = sentence

        def score(key: str) -> float:
            value = cfg.dense_weight * cosine[key]
            if top_lexical > 0:
                value += cfg.lexical_weight * lexical_scores.get(key, 0.0) / top_lexical
            if top_document > 0:
                value += cfg.document_weight * documents.get(sentences[key].doc_id, 0.0) / top_document
            return value

        fused = {key: score(key) for key in sentences}
        order = sorted(fused, key=lambda key: (-fused[key], key))
        items = [
            Pooled(Hit(sentences[key], fused[key], dense_score=cosine[key], lexical_score=lexical_scores.get(key)),
                   document_score=documents.get(sentences[key].doc_id, 0.0), dense_rank=dense_rank.get(key),
                   lexical_rank=lexical_rank.get(key), document_rank=document_rank.get(sentences[key].doc_id))
            for key in order
        ]
        return CandidatePool(items, top_lexical, top_document, read_documents, read_sentences)


@lru_cache(maxsize=1)
def _searches() -> ThreadPoolExecutor:
    """The threads that run a question's BM25 searches beside its dense search (parallel_searches);
    shared by every retriever, made on first use."""
    return ThreadPoolExecutor(max_workers=SEARCH_THREADS, thread_name_prefix="citeqa-search")


def fuse(dense: list[Scored], lexical: list[Scored], k: int, settings: RetrievalSettings) -> list[Hit]:
    """Reciprocal rank fusion of two ranked lists into the top ``k`` hits."""
    fused: dict[str, float] = {}
    sentences: dict[str, Sentence] = {}
    dense_scores: dict[str, float] = {}
    lexical_scores: dict[str, float] = {}
    for weight, ranked, scores in (
        (settings.dense_weight, dense, dense_scores),
        (settings.lexical_weight, lexical, lexical_scores),
    ):
        for rank, item in enumerate(ranked, start=1):
            key = item.sentence.id
            sentences[key] = item.sentence
            scores[key] = item.score
            fused[key] = fused.get(key, 0.0) + weight / (settings.rrf_k + rank)
    order = sorted(fused, key=lambda key: (-fused[key], key))[:k]
    return [
        Hit(
            sentence=sentences[key],
            score=fused[key],
            dense_score=dense_scores.get(key),
            lexical_score=lexical_scores.get(key),
        )
        for key in order
    ]
