"""The HTML evaluation report: self-contained, escaped, well formed, robust to empty runs."""

from __future__ import annotations

import html
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from citeqa.evaluation.html_report import write_html
from citeqa.evaluation.summary import best_threshold, summarise

VOID = {"meta", "br", "hr", "img", "input", "link", "area", "base", "col", "embed", "source", "track", "wbr"}
EVIL = "<script>alert(1)</script>"


def record(i: int, **overrides: Any) -> dict[str, Any]:
    """One record shaped like evaluation.run._ask_one's: a correct, answered, positive question."""
    gold = {"doc_id": f"doc-{i}", "start": 0, "end": 30, "text": f"Gold sentence number {i}."}
    r = {
        "id": f"q{i}", "question": f"Question {i}?", "answers": [f"answer {i}"], "semantics": "any",
        "positive": True, "negative": False, "status": "answered", "abstained": False,
        "answer": f"Gold sentence number {i}. [1]", "short_answer": f"answer {i}",
        "citations": [{"doc_id": gold["doc_id"], "doc_version": "v1", "start": 0, "end": 30, "quote": gold["text"]}],
        "gold": [gold], "hits": [], "citations_valid": 1, "citations_correct": 1, "citations_returned": 1,
        "citation_recall": 1.0, "top1": 1.0, "search_rank": 1, "support": 0.5 + (i % 5) / 10,
        "answer_em": 0.0, "answer_f1": 0.4, "short_em": 1.0, "short_f1": 1.0, "citation_chars": [30],
        "ask_ms": 20.0 + 7 * i, "search_ms": 5.0 + i, "correct": True,
    }
    r.update(overrides)
    return r


def wrong_record(i: int) -> dict[str, Any]:
    return record(
        i, question=f"Who wrote {EVIL} & why?", answers=["Ada <b>Lovelace</b>"], short_answer="Charles Babbage",
        citations=[{"doc_id": "doc-other", "doc_version": "v1", "start": 40, "end": 80,
                    "quote": "The Analytical Engine was never built."}],
        gold=[{"doc_id": f"doc-{i}", "start": 0, "end": 40, "text": "Ada Lovelace wrote the first program."}],
        citations_valid=0, citations_correct=0, citation_recall=0.0, top1=0.0, search_rank=3, correct=False,
    )


def sample() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    records = [record(i) for i in range(30)] + [wrong_record(30)]
    records.append(record(31, positive=False, negative=True, status="unsupported", abstained=True, citations=[],
                          citations_valid=0, citations_correct=0, citations_returned=0, citation_chars=[],
                          citation_recall=0.0, top1=0.0, search_rank=None, support=0.1))
    report = summarise(records)
    report["config"] = {"target": "in-process", "model": "all-MiniLM-L6-v2", "fusion": "rrf", "min_similarity": 0.35,
                        "negatives": 0.1, "seed": 0, "top_k": None, "documents_indexed": 31, "ingest_seconds": 1.25}
    report["versions"] = {"citeqa": "0.1.0", "torch": "2.13.0"}
    report["recommended_min_similarity"] = best_threshold(report["threshold_curve"])["threshold"]
    return report, records


class Balance(HTMLParser):
    """Tracks open tags; collects mismatches (void elements and <x/> tags need no closing)."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.add(tag)
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list) -> None:
        self.tags.add(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()


def render(tmp_path: Path, report: dict[str, Any], records: list[dict[str, Any]]) -> str:
    path = tmp_path / "out" / "report.html"
    write_html(report, records, path)
    assert path.is_file()
    return path.read_text(encoding="utf-8")


def assert_well_formed(page: str) -> Balance:
    parser = Balance()
    parser.feed(page)
    parser.close()
    assert parser.errors == [], parser.errors[:5]
    assert parser.stack == []
    return parser


def test_report_is_self_contained_well_formed_html(tmp_path: Path) -> None:
    report, records = sample()
    page = render(tmp_path, report, records)
    assert page.startswith("<!doctype html>")
    parser = assert_well_formed(page)
    assert {"svg", "figure", "figcaption", "title", "polyline", "rect", "th"} <= parser.tags
    assert "http://" not in page and "https://" not in page
    assert "<link" not in page and "src=" not in page and "@import" not in page and "url(" not in page


def test_report_shows_config_versions_and_metrics(tmp_path: Path) -> None:
    report, records = sample()
    page = render(tmp_path, report, records)
    for text in ("in-process", "all-MiniLM-L6-v2", "rrf", "documents indexed", "1.25", "torch", "2.13.0"):
        assert text in page
    assert "data-metric='quote_valid_rate'" in page
    assert f"{report['quote_valid_rate'] * 100:.1f}%" in page
    assert report["quote_valid_rate"] < 1.0 and "class='card bad' data-metric='quote_valid_rate'" in page
    assert f"{report['top1_citation_accuracy'] * 100:.1f}%" in page
    assert f"{report['search_mrr'] * 100:.1f}%" in page
    assert f"best {report['recommended_min_similarity']:.2f}" in page
    assert "current 0.35" in page and "p50 " in page and "p95 " in page


def test_perfect_quotes_are_not_flagged(tmp_path: Path) -> None:
    records = [record(i) for i in range(5)]
    page = render(tmp_path, summarise(records), records)
    assert "class='card ok' data-metric='quote_valid_rate'" in page
    assert "No wrong answers." in page


def test_untrusted_text_is_escaped(tmp_path: Path) -> None:
    report, records = sample()
    page = render(tmp_path, report, records)
    assert "<script" not in page
    assert "<b>Lovelace" not in page
    assert html.escape(EVIL) in page
    assert_well_formed(page)


def test_failure_shows_cited_and_gold_sentences(tmp_path: Path) -> None:
    report, records = sample()
    page = render(tmp_path, report, records)
    failures = page.split("id='failures'", 1)[1]
    assert "The Analytical Engine was never built." in failures and "doc-other" in failures
    assert "Ada Lovelace wrote the first program." in failures and "doc-30" in failures
    assert "Charles Babbage" in failures
    assert "Showing 1 of 1" in failures
    assert "Question 3?" not in failures  # correct answers are not listed


def test_failures_are_capped_in_question_order(tmp_path: Path) -> None:
    records = [wrong_record(i) for i in range(40)]
    page = render(tmp_path, summarise(records), records)
    assert "Showing 25 of 40" in page
    assert page.count("<article class='fail'>") == 25
    assert "doc-24" in page and "doc-25<" not in page


def test_empty_run_and_missing_metrics(tmp_path: Path) -> None:
    page = render(tmp_path, summarise([]), [])
    assert_well_formed(page)
    assert "No questions were asked." in page and "No wrong answers." in page
    bare = render(tmp_path, {"questions": 0, "quote_valid_rate": None, "threshold_curve": []}, [])
    assert_well_formed(bare)
    assert "–" in bare and "No threshold curve" in bare


def test_all_none_metrics_and_identical_latencies(tmp_path: Path) -> None:
    report, _ = sample()
    report = {k: (None if not isinstance(v, (list, dict)) else v) for k, v in report.items()}
    report["config"] = {"target": "localhost:8000", "min_similarity": None}
    records = [record(i, ask_ms=12.0) for i in range(3)] + [record(9, citations=[], gold=[], correct=False)]
    page = render(tmp_path, report, records)
    assert_well_formed(page)
    assert page.count(">–<") >= 10
    assert "<em>(none)</em>" in page  # no citation and no gold sentence
