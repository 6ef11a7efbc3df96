"""The evaluation data of ``citeqa eval`` (../shared/eval/README.md): questions with their
gold evidence, the corpus, and which documents to leave out to make negatives.

A question may say ``"answerable": false``: the collection holds nothing that answers it (a
question about the article's subject that the article leaves open). The eval treats a
question as a negative when none of its gold documents is indexed; an unanswerable
question's only gold document is ``NO_GOLD_DOCUMENT``, an id no ingest accepts, so it is a
negative in every run, with or without ``--negatives``. Its ``documents`` (if any) are the
documents it is asked against, indexed like any other.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from citeqa.evaluation.metrics import Span

# The gold document of an unanswerable question: a control character makes it a doc_id
# that ingest refuses (index/ingest.py validate), so it can never be among those indexed.
NO_GOLD_DOCUMENT = "\x00no-gold-document"


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    answers: list[str]
    documents: list[dict[str, Any]]
    evidence: list[Span]
    semantics: str
    answerable: bool = True

    @property
    def gold_doc_ids(self) -> set[str]:
        if not self.answerable:
            return {NO_GOLD_DOCUMENT}
        return {e.doc_id for e in self.evidence} or {d["doc_id"] for d in self.documents}


def load_questions(path: Path, limit: int | None = None) -> list[Question]:
    """The first ``limit`` questions of a JSONL file; ValueError names the line of a bad one."""
    questions = []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            row = json.loads(line)
            try:
                answerable = row.get("answerable", True)
                if not isinstance(answerable, bool):
                    raise TypeError("answerable must be true or false")
                evidence = [Span(e["doc_id"], int(e["start"]), int(e["end"])) for e in row.get("evidence") or []]
                if not answerable and (evidence or row.get("answers")):
                    raise ValueError("an unanswerable question has no evidence and no answers")
                questions.append(
                    Question(
                        id=str(row["id"]), question=row["question"], answers=list(row.get("answers") or []),
                        documents=list(row.get("documents") or []), evidence=evidence,
                        semantics=(row.get("meta") or {}).get("evidence_semantics", "any"), answerable=answerable,
                    )
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"{path}:{number}: not an evaluation question ({exc})") from exc
            if limit and len(questions) >= limit:
                break
    return questions


def load_corpus(path: Path) -> list[dict[str, Any]]:
    """The corpus JSONL: one {doc_id, title, text, metadata?} a line."""
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def choose_negatives(questions: Sequence[Question], fraction: float, seed: int = 0) -> set[str]:
    """Doc ids to leave out so that about ``fraction`` of the questions lose all their gold
    documents. Documents are dropped whole (a SQuAD paragraph serves several questions),
    in a seeded random order, until the share is reached. Unanswerable questions are
    negatives already: the share is of the answerable ones."""
    questions = [q for q in questions if q.answerable]
    if fraction <= 0:
        return set()
    by_doc: dict[str, list[Question]] = {}
    for q in questions:
        for d in q.gold_doc_ids:
            by_doc.setdefault(d, []).append(q)
    order = sorted(by_doc)
    random.Random(seed).shuffle(order)
    left_out: set[str] = set()
    target = math.ceil(fraction * len(questions))
    lost = 0
    for doc_id in order:
        if lost >= target:
            break
        would_lose = sum(q.gold_doc_ids <= left_out | {doc_id} for q in questions)
        if would_lose <= target:  # skip a document that would overshoot the share
            left_out.add(doc_id)
            lost = would_lose
    return left_out
