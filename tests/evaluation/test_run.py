"""An evaluation run on a small question set over the seed article, in process and over HTTP
(the same numbers either way)."""

from __future__ import annotations

from citeqa.evaluation.questions import load_questions
from citeqa.evaluation.run import evaluate
from citeqa.evaluation.targets import HttpTarget, InProcessTarget


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
    assert r["config"]["target"] == "in-process" and r["config"]["documents_indexed"] == 1
    troops = next(rec for rec in run.records if rec["id"] == "q0")
    assert troops["top1"] == 1.0 and troops["short_f1"] == 1.0
    assert [rec["id"] for rec in run.failures] == [rec["id"] for rec in run.records if not rec["correct"]]


def test_http_eval_gives_the_same_scores(client, questions_file, services):
    qs = load_questions(questions_file)
    over_http = evaluate(HttpTarget("http://testserver", client=client), qs, seed=0).report
    # client's app has the seed indexed already; in process gets only the questions' documents
    in_process = evaluate(InProcessTarget(services), qs, seed=0).report
    for key in ("top1_citation_accuracy", "citation_precision", "search_hit_at_1", "quote_valid_rate"):
        assert over_http[key] == in_process[key], key
