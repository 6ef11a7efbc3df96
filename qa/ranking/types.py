"""The Reranker role: orders a question's candidate sentences and says, for each, how
likely it is to answer the question.

Built-ins (entry-point group ``citeqa.rerankers``): ``learned`` (qa/ranking/learned.py, the
default: a small fitted model over retrieval and language features) and ``cross-encoder``
(qa/ranking/cross_encoder.py: a sentence-transformers CrossEncoder from a local path).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Protocol, Sequence

from citeqa.index.types import Hit


@dataclass(frozen=True)
class Candidate:
    """One retrieved sentence of a question, with what the ranker may look at."""

    hit: Hit
    title: str = ""
    # Named signals (qa/ranking/features.py): dense cosine, BM25s, term coverage, …
    features: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Ranked:
    """A candidate's hit with the reranker's probability that it answers the question."""

    hit: Hit
    probability: float


class Reranker(Protocol):
    name: str

    def rerank(self, question: str, candidates: Sequence[Candidate]) -> list[Ranked]:
        """The candidates best first, each with its probability (0–1)."""
        ...
