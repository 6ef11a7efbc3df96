"""The metrics of ``citeqa eval``: how one answer is scored against one gold question (pure
functions, no I/O).

A citation is correct when its span overlaps a gold evidence span of the same doc_id
(scoring by overlap, not by sentence index, because splitters cut differently).
Evidence semantics (../shared/eval/README.md):
- ``any``: each gold sentence alone supports the answer; one covered is full recall;
- ``all``: every gold sentence is needed; recall is the share of gold spans covered.
Answers are scored the SQuAD way: normalise (lower case, drop punctuation and the
articles a/an/the, fold white space), exact match and token F1, best over gold answers.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Sequence

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_MARKERS = re.compile(r"\s*\[\d+(?:\s*,\s*\d+)*\]")
_PUNCT = set(string.punctuation)


@dataclass(frozen=True)
class Span:
    doc_id: str
    start: int
    end: int


def overlaps(a: Span, b: Span) -> bool:
    return a.doc_id == b.doc_id and a.start < b.end and b.start < a.end


def normalize_answer(text: str) -> str:
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def strip_markers(answer: str) -> str:
    return _MARKERS.sub("", answer)


def exact_match(prediction: str, golds: Sequence[str]) -> float:
    return max((float(normalize_answer(prediction) == normalize_answer(g)) for g in golds), default=0.0)


def token_f1(prediction: str, golds: Sequence[str]) -> float:
    return max((_f1(prediction, g) for g in golds), default=0.0)


def _f1(prediction: str, gold: str) -> float:
    pred, ref = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def covered(gold: Sequence[Span], predicted: Iterable[Span]) -> float:
    """Share of gold spans that some predicted span overlaps."""
    if not gold:
        return 0.0
    predicted = list(predicted)
    return sum(any(overlaps(g, p) for p in predicted) for g in gold) / len(gold)


def evidence_recall(gold: Sequence[Span], predicted: Iterable[Span], semantics: str) -> float:
    share = covered(gold, predicted)
    if semantics == "all":
        return share
    return 1.0 if share > 0 else 0.0


def first_full_rank(gold: Sequence[Span], ranked: Sequence[Span], semantics: str, k: int) -> int | None:
    """1-based rank at which the top hits first satisfy the evidence (any: one gold span
    overlapped; all: every gold span overlapped), within the first ``k``; else None."""
    for rank in range(1, min(k, len(ranked)) + 1):
        if evidence_recall(gold, ranked[:rank], semantics) >= 1.0:
            return rank
    return None


@dataclass(frozen=True)
class CitationScore:
    correct: int  # citations overlapping a gold span
    returned: int
    recall: float
    top1: float  # the first citation is correct


def score_citations(gold: Sequence[Span], cited: Sequence[Span], semantics: str) -> CitationScore:
    correct = sum(any(overlaps(c, g) for g in gold) for c in cited)
    top1 = float(bool(cited) and any(overlaps(cited[0], g) for g in gold))
    return CitationScore(correct, len(cited), evidence_recall(gold, cited, semantics), top1)


def f1_of(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0

