"""`citeqa eval`: score citation accuracy, retrieval, answers and abstention on a question set
in the format of ../shared/eval/README.md, in process or against any server over HTTP.

A target (qa/eval_targets.py) hides where the system runs; this module only loads data,
asks, and scores with qa/scoring.py. Figures for citations, search and answers count the
questions whose gold documents are indexed; abstention figures count every question.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

from citeqa.index.ingest import DocumentInput
from citeqa.qa.scoring import (
    Span, exact_match, f1_of, first_full_rank, percentile, score_citations, strip_markers, token_f1,
)

SEARCH_K = 10


class EvalTarget(Protocol):
    """A citeqa to evaluate: in process or over HTTP, the same JSON either way."""

    def describe(self) -> dict[str, Any]: ...

    def ingest(self, docs: Sequence[DocumentInput], progress: Callable[[int], None]) -> None: ...

    def ask(self, question: str, top_k: int | None) -> dict[str, Any]: ...

    def search(self, query: str, top_k: int) -> dict[str, Any]: ...

    def document_text(self, doc_id: str, version: str) -> str | None: ...


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


@dataclass
class EvalRun:
    report: dict[str, Any]
    records: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failures(self) -> list[dict[str, Any]]:
        return [r for r in self.records if not r["correct"]]


def evaluate(
    target: EvalTarget,
    questions: Sequence[Question],
    corpus: Sequence[dict[str, Any]] | None = None,
    negatives: float = 0.0,
    top_k: int | None = None,
    seed: int = 0,
    progress: Callable[[str, int, int], Callable[[int], None]] | None = None,
) -> EvalRun:
    """Ingest, ask every question, score. ``progress(label, total)`` returns an advance callback."""
    progress = progress or (lambda label, total, start=0: (lambda n: None))
    left_out = choose_negatives(questions, negatives, seed)
    docs: dict[str, dict[str, Any]] = {}
    for d in corpus if corpus is not None else (d for q in questions for d in q.documents):
        docs.setdefault(d["doc_id"], d)
    to_index = [
        DocumentInput(text=d["text"], doc_id=d["doc_id"], title=d.get("title") or "", metadata=d.get("metadata") or {})
        for doc_id, d in docs.items() if doc_id not in left_out
    ]
    started = time.perf_counter()
    target.ingest(to_index, progress("ingest", len(to_index), 0))
    ingest_s = time.perf_counter() - started
    indexed = {d.doc_id for d in to_index}

    records = []
    advance = progress("questions", len(questions), 0)
    texts: dict[tuple[str, str], str | None] = {}
    for q in questions:
        records.append(_ask_one(target, q, indexed, top_k, texts))
        advance(1)
    report = summarise(records)
    report["config"] = {**target.describe(), "negatives": negatives, "seed": seed, "top_k": top_k,
                        "documents_indexed": len(indexed), "ingest_seconds": round(ingest_s, 2)}
    return EvalRun(report=report, records=records)


def _ask_one(target: EvalTarget, q: Question, indexed: set[str], top_k: int | None,
             texts: dict[tuple[str, str], str | None]) -> dict[str, Any]:
    t0 = time.perf_counter()
    answer = target.ask(q.question, top_k)
    t1 = time.perf_counter()
    search = target.search(q.question, SEARCH_K)
    t2 = time.perf_counter()
    citations = answer.get("citations", [])
    valid = 0
    for c in citations:
        key = (c["doc_id"], c["doc_version"])
        if key not in texts:
            texts[key] = target.document_text(*key)
        text = texts[key]
        valid += text is not None and text[c["start"]:c["end"]] == c["quote"]
    cited = [Span(c["doc_id"], c["start"], c["end"]) for c in citations]
    hits = [Span(h["doc_id"], h["start"], h["end"]) for h in search["hits"]]
    positive = q.gold_doc_ids <= indexed
    negative = not (q.gold_doc_ids & indexed)
    cs = score_citations(q.evidence, cited, q.semantics)
    rank = first_full_rank(q.evidence, hits, q.semantics, SEARCH_K)
    answer_text = strip_markers(answer["answer"]) if answer["status"] != "unsupported" else ""
    short = (answer.get("short_answer") or {}).get("text", "")
    # The abstention signal the threshold chart sweeps: best cosine among the answer's passages.
    # (The answerer looks at top_k passages, 5 unless asked otherwise.)
    support = max((h.get("dense_score") or 0.0 for h in search["hits"][:top_k or 5]), default=0.0)
    abstained = answer["status"] == "unsupported"
    return {
        "id": q.id, "question": q.question, "answers": q.answers, "semantics": q.semantics,
        "positive": positive, "negative": negative, "status": answer["status"], "abstained": abstained,
        "answer": answer["answer"], "short_answer": short,
        "citations": [{k2: c[k2] for k2 in ("doc_id", "doc_version", "start", "end", "quote")} for c in citations],
        "gold": [{"doc_id": e.doc_id, "start": e.start, "end": e.end,
                  "text": _gold_text(q, e)} for e in q.evidence],
        "hits": [{k2: h[k2] for k2 in ("doc_id", "start", "end", "text", "score")} for h in search["hits"][:5]],
        "citations_valid": valid, "citations_correct": cs.correct, "citations_returned": cs.returned,
        "citation_recall": cs.recall, "top1": cs.top1, "search_rank": rank, "support": support,
        "answer_em": exact_match(answer_text, q.answers) if answer_text else 0.0,
        "answer_f1": token_f1(answer_text, q.answers) if answer_text else 0.0,
        "short_em": exact_match(short, q.answers) if short else 0.0,
        "short_f1": token_f1(short, q.answers) if short else 0.0,
        "citation_chars": [c["end"] - c["start"] for c in citations],
        "ask_ms": (t1 - t0) * 1000, "search_ms": (t2 - t1) * 1000,
        "generation": answer.get("generation") or {},
        "verifier_citations": sum(c.get("origin") == "verifier" for c in citations),
        "dropped_citations": answer.get("dropped_citations", 0),
        "correct": (cs.top1 == 1.0) if positive else (abstained if negative else True),
    }


def _gold_text(q: Question, e: Span) -> str:
    for d in q.documents:
        if d["doc_id"] == e.doc_id:
            return d["text"][e.start:e.end]
    return ""


def _mean(values: Sequence[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def summarise(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    pos = [r for r in records if r["positive"]]
    neg = [r for r in records if r["negative"]]
    returned = sum(r["citations_returned"] for r in pos)
    precision = sum(r["citations_correct"] for r in pos) / returned if returned else 0.0
    recall = sum(r["citation_recall"] for r in pos) / len(pos) if pos else 0.0
    all_returned = sum(r["citations_returned"] for r in records)
    abstained = [r for r in records if r["abstained"]]
    correct_abstentions = sum(r["negative"] for r in abstained)
    chars = [c for r in records for c in r["citation_chars"]]
    ranks = [r["search_rank"] for r in pos]
    return {
        "questions": len(records),
        "questions_with_gold_indexed": len(pos),
        "negative_questions": len(neg),
        "quote_valid_rate": round(sum(r["citations_valid"] for r in records) / all_returned, 4) if all_returned else 1.0,
        "citation_precision": round(precision, 4),
        "citation_recall": round(recall, 4),
        "citation_f1": round(f1_of(precision, recall), 4),
        "top1_citation_accuracy": _mean([r["top1"] for r in pos]),
        "search_hit_at_1": _mean([float(k is not None and k <= 1) for k in ranks]),
        "search_hit_at_5": _mean([float(k is not None and k <= 5) for k in ranks]),
        "search_hit_at_10": _mean([float(k is not None and k <= 10) for k in ranks]),
        "search_mrr": _mean([1.0 / k if k else 0.0 for k in ranks]),
        "answer_em": _mean([r["answer_em"] for r in pos]),
        "answer_f1": _mean([r["answer_f1"] for r in pos]),
        "short_answer_em": _mean([r["short_em"] for r in pos]),
        "short_answer_f1": _mean([r["short_f1"] for r in pos]),
        "answered_rate": _mean([float(not r["abstained"]) for r in pos]),
        "abstain_precision": round(correct_abstentions / len(abstained), 4) if abstained else None,
        "abstain_recall": round(correct_abstentions / len(neg), 4) if neg else None,
        "mean_citation_chars": round(sum(chars) / len(chars), 1) if chars else None,
        "ask_p50_ms": _round(percentile([r["ask_ms"] for r in records], 50)),
        "ask_p95_ms": _round(percentile([r["ask_ms"] for r in records], 95)),
        "search_p50_ms": _round(percentile([r["search_ms"] for r in records], 50)),
        **_generation_figures(records, all_returned),
        "threshold_curve": threshold_curve(records),
    }


def _generation_figures(records: Sequence[dict[str, Any]], returned: int) -> dict[str, Any]:
    """What the generator cost and how often the verifier had to step in."""
    made = [r.get("generation", {}) for r in records if r.get("generation", {}).get("generate_ms") is not None]
    generators = sorted({r.get("generation", {}).get("generator") for r in records} - {None})
    return {
        "generator": ", ".join(generators) or None,
        "generate_p50_ms": _round(percentile([g["generate_ms"] for g in made], 50)),
        "generate_p95_ms": _round(percentile([g["generate_ms"] for g in made], 95)),
        "first_token_p50_ms": _round(percentile([g["first_token_ms"] for g in made if "first_token_ms" in g], 50)),
        "tokens_per_s_p50": _round(percentile([g["tokens_per_s"] for g in made if "tokens_per_s" in g], 50)),
        "completion_tokens_mean": _mean([g["completion_tokens"] for g in made if "completion_tokens" in g]),
        "dropped_citations": sum(r.get("dropped_citations", 0) for r in records),
        "verifier_citation_rate": round(sum(r.get("verifier_citations", 0) for r in records) / returned, 4)
        if returned else None,
    }


def _round(value: float | None) -> float | None:
    return round(value, 2) if value is not None else None


def threshold_curve(records: Sequence[dict[str, Any]], steps: int = 41) -> list[dict[str, float]]:
    """What abstaining below each similarity threshold would give, from the same run:
    accuracy = (correct first citations + correct abstentions) / questions. A question the
    run abstained on counts, where the sweep would answer it, as right when its top search
    hit is gold (the sentence the answer would most likely have cited)."""
    negatives = sum(r["negative"] for r in records)
    curve = []
    for i in range(steps):
        t = round(i / (steps - 1), 3)
        right = answered = abstained_right = abstained = 0
        for r in records:
            if r["support"] >= t:
                answered += 1
                top1 = r["top1"] if not r["abstained"] else float(r["search_rank"] == 1)
                right += bool(r["positive"] and top1 == 1.0)
            else:
                abstained += 1
                abstained_right += r["negative"]
        n = len(records) or 1
        curve.append({
            "threshold": t,
            "accuracy": round((right + abstained_right) / n, 4),
            "answered_rate": round(answered / n, 4),
            "answered_precision": round(right / answered, 4) if answered else 0.0,
            "abstain_precision": round(abstained_right / abstained, 4) if abstained else 0.0,
            "abstain_recall": round(abstained_right / negatives, 4) if negatives else 0.0,
        })
    return curve


def best_threshold(curve: Sequence[dict[str, float]], tolerance: float = 0.002) -> dict[str, float]:
    """The threshold with the best accuracy; among those within ``tolerance`` of it (run
    noise), the lowest, which answers the most questions."""
    best = max(point["accuracy"] for point in curve)
    return min((p for p in curve if p["accuracy"] >= best - tolerance), key=lambda p: p["threshold"])
