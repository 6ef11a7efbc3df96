"""An evaluation run on a small question set over the seed article, in process and over HTTP
(the same numbers either way); and runs in separate collections of one store, which do not
see each other's documents."""

from __future__ import annotations

import json

import pytest

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


@pytest.mark.slow
def test_runs_in_two_collections_do_not_see_each_other(services, questions_file):
    """The seed article is evaluated in one collection, the tungsten note alone in another,
    on the same store: neither run retrieves or cites the other's document, and nothing
    lands in ``default``."""
    from tests.evaluation.conftest import OTHER, SEED

    qs = load_questions(questions_file)
    seed_run = evaluate(InProcessTarget(services, collection="eval-a"), qs, negatives=0.2, seed=0)
    tungsten_run = evaluate(InProcessTarget(services, collection="eval-b"), qs, corpus=[OTHER])

    a, b = seed_run.report, tungsten_run.report
    assert a["config"]["collection"] == "eval-a" and a["config"]["documents_indexed"] == 1
    assert a["top1_citation_accuracy"] >= 0.75 and a["quote_valid_rate"] == 1.0
    assert {c["doc_id"] for r in seed_run.records for c in r["citations"]} == {SEED.doc_id}
    # In eval-b the seed questions have no gold document: a leak from eval-a would answer them.
    assert b["questions_with_gold_indexed"] == 1 and b["quote_valid_rate"] == 1.0
    assert {c["doc_id"] for r in tungsten_run.records for c in r["citations"]} <= {OTHER["doc_id"]}
    assert {h["doc_id"] for r in tungsten_run.records for h in r["hits"]} == {OTHER["doc_id"]}
    assert next(r for r in tungsten_run.records if r["id"] == "neg")["top1"] == 1.0
    counts = {c.name: c.documents for c in services.store.collections()}
    assert counts == {"default": 0, "eval-a": 1, "eval-b": 1}


def test_the_http_target_names_its_collection_in_every_request():
    import httpx

    from citeqa.index.ingest import DocumentInput

    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "GET":
            return httpx.Response(200, json={"text": "T"})
        return httpx.Response(200, json={"created": True, "sentence_count": 1, "hits": []})

    with httpx.Client(base_url="http://test", transport=httpx.MockTransport(answer)) as client:
        target = HttpTarget("http://test", client=client, collection="run-7")
        target.ingest([DocumentInput(text="One.", doc_id="d")], lambda n: None)
        target.ask("Why?", None)
        target.search("Why?", 10)
        assert target.document_text("d", "v1") == "T"
    posted = [json.loads(r.content) for r in seen if r.method == "POST"]
    assert [r.url.path for r in seen if r.method == "POST"][0] == "/v1/collections"
    assert posted[0] == {"name": "run-7"} and [p["collection"] for p in posted[1:]] == ["run-7"] * 3
    assert seen[-1].url.params["collection"] == "run-7"
    assert target.describe()["collection"] == "run-7"
