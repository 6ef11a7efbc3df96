"""The evaluation data of ``citeqa eval`` (../shared/eval/README.md): questions with their
gold evidence, the corpus, and which documents to leave out to make negatives."""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from citeqa.evaluation.metrics import Span


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    answers: list[str]
    documents: list[dict[str, Any]]
    evidence: list[Span]
    semantics: str

    @property
    def gold_doc_ids(self) -> set[str]:
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
                questions.append(
                    Question(
                        id=str(row["id"]), question=row["question"], answers=list(row.get("answers") or []),
                        documents=list(row.get("documents") or []),
                        evidence=[Span(e["doc_id"], int(e["start"]), int(e["end"])) for e in row.get("evidence") or []],
                        semantics=(row.get("meta") or {}).get("evidence_semantics", "any"),
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
    in a seeded random order, until the share is reached."""
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
