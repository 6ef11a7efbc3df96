"""``citeqa eval``'s run: index the corpus (minus the negatives' documents), ask every
question, and score each answer, its citations and a search for it.

A target (evaluation/targets.py) hides where the system runs; scoring is
evaluation/metrics.py, the figures over all questions evaluation/summary.py. Figures for
citations, search and answers count the questions whose gold documents are indexed;
abstention figures count every question.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from citeqa.evaluation.metrics import Span, exact_match, first_full_rank, score_citations, strip_markers, token_f1
from citeqa.evaluation.questions import Question, choose_negatives
from citeqa.evaluation.summary import summarise
from citeqa.evaluation.targets import EvalTarget
from citeqa.index.ingest import DocumentInput

SEARCH_K = 10

Advance = Callable[[int], None]
# progress(label, total, done) -> a callback that advances that bar by n
Progress = Callable[[str, int, int], Advance]


@dataclass
class EvalRun:
    report: dict[str, Any]
    records: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failures(self) -> list[dict[str, Any]]:
        return [r for r in self.records if not r["correct"]]


def _no_progress(label: str, total: int, done: int = 0) -> Advance:
    return lambda n: None


def evaluate(
    target: EvalTarget,
    questions: Sequence[Question],
    corpus: Sequence[dict[str, Any]] | None = None,
    negatives: float = 0.0,
    top_k: int | None = None,
    seed: int = 0,
    progress: Progress | None = None,
) -> EvalRun:
    """Ingest, ask every question, score. ``progress(label, total)`` returns an advance callback."""
    progress = progress or _no_progress
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
    indexed = set(docs) - left_out  # the doc_ids of to_index

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
    # The best cosine among the answer's passages (the answerer looks at top_k, 5 unless asked).
    support = max((h.get("dense_score") or 0.0 for h in search["hits"][:top_k or 5]), default=0.0)
    # The abstention signal: the ranker's probability that the best sentence answers (search
    # ranks as the answerer does; its first hit's score is that probability).
    probability = search["hits"][0]["score"] if search["hits"] else 0.0
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
        "probability": probability,
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
