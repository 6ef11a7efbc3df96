"""`citeqa eval` end to end on a small question set over the seed article, in process and
over HTTP (the same numbers either way), plus the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from citeqa.index.ingest import read_inputs
from citeqa.qa.eval_targets import HttpTarget, InProcessTarget
from citeqa.qa.evaluate import evaluate, load_questions
from tests.support.corpus import SEEDS_DIR

SEED = read_inputs([SEEDS_DIR])[0]


def span_of(phrase: str) -> dict:
    """The gold evidence: the seed sentence that contains ``phrase``."""
    from citeqa.index.sentences import split_sentences

    for s in split_sentences(SEED.text):
        if phrase in SEED.text[s.start:s.end]:
            return {"doc_id": SEED.doc_id, "start": s.start, "end": s.end}
    raise AssertionError(phrase)


CASES = [
    ("How many troops did North Korea send?", "11,000 to 12,000", ["approximately 11,000 to 12,000"]),
    ("Who is Russia's ambassador to Pyongyang?", "Alexander Matsegora", ["Alexander Matsegora"]),
    ("Did North Korea ask Russia for compensation?", "compensation", ["no"]),
    ("How many North Koreans crossed into Russia in 2024?", "13,000 crossings", ["over 13,000"]),
]
OTHER = {"doc_id": "tungsten", "title": "Tungsten",
         "text": "Tungsten has the highest melting point of all metals. It boils at 5,555 degrees Celsius."}


@pytest.fixture
def questions_file(tmp_path) -> Path:
    doc = {"doc_id": SEED.doc_id, "title": SEED.title, "text": SEED.text}
    rows = [
        {"id": f"q{i}", "question": q, "answers": answers, "documents": [doc], "evidence": [span_of(phrase)],
         "meta": {"evidence_semantics": "any"}}
        for i, (q, phrase, answers) in enumerate(CASES)
    ]
    rows.append({"id": "neg", "question": "What is the boiling point of tungsten?", "answers": ["5,555 degrees Celsius"],
                 "documents": [OTHER], "evidence": [{"doc_id": "tungsten", "start": 54, "end": 89}],
                 "meta": {"evidence_semantics": "any"}})
    path = tmp_path / "questions.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def services(tmp_path, embedder):
    from citeqa.api.services import Services
    from citeqa.api.settings import Settings

    s = Services.open(Settings(data_dir=tmp_path / "eval-data", seeds_dir=None), embedder=embedder)
    yield s
    s.close()


def test_in_process_eval_scores_the_seed_questions(services, questions_file):
    qs = load_questions(questions_file)
    run = evaluate(InProcessTarget(services), qs, negatives=0.2, seed=0)
    r = run.report
    assert r["questions"] == 5
    # The tungsten document is the one left out (dropping the seed would lose 4 of 5).
    assert r["negative_questions"] == 1 and r["questions_with_gold_indexed"] == 4
    assert r["quote_valid_rate"] == 1.0
    assert r["top1_citation_accuracy"] >= 0.75
    assert r["abstain_recall"] == 1.0
    assert r["short_answer_f1"] > 0
    assert r["ask_p50_ms"] > 0 and r["mean_citation_chars"] > 50
    troops = next(rec for rec in run.records if rec["id"] == "q0")
    assert troops["top1"] == 1.0 and troops["short_f1"] == 1.0


def test_http_eval_gives_the_same_scores(client, questions_file, services):
    qs = load_questions(questions_file)
    over_http = evaluate(HttpTarget("http://testserver", client=client), qs, seed=0).report
    # client's app has the seed indexed already; in process gets only the questions' documents
    in_process = evaluate(InProcessTarget(services), qs, seed=0).report
    for key in ("top1_citation_accuracy", "citation_precision", "search_hit_at_1", "quote_valid_rate"):
        assert over_http[key] == in_process[key], key


def test_cli_writes_report_failures_and_html(tmp_path, questions_file):
    out, html = tmp_path / "report.json", tmp_path / "report.html"
    script = Path(sys.executable).parent / "citeqa"
    proc = subprocess.run([str(script), "eval", str(questions_file), "--out", str(out), "--html", str(html),
                           "--negatives", "0.2"], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(out.read_text())
    for key in ("questions", "quote_valid_rate", "citation_precision", "citation_recall", "citation_f1",
                "top1_citation_accuracy", "search_hit_at_1", "search_hit_at_5", "search_hit_at_10", "search_mrr",
                "answer_em", "answer_f1", "short_answer_em", "short_answer_f1", "answered_rate",
                "abstain_precision", "abstain_recall", "mean_citation_chars", "ask_p50_ms", "ask_p95_ms",
                "search_p50_ms", "config", "versions"):
        assert key in report, key
    assert (tmp_path / "report.failures.jsonl").exists()
    assert "<svg" in html.read_text()
    assert "top-1 citation accuracy" in proc.stdout
