"""The natural-question set about the seed article (evaluation/sets/seed_questions.jsonl,
issue 14 item 5), run by ``citeqa eval`` in process, against the issue's targets:

- right sentence first (top-1 citation accuracy over the answerable questions) >= 0.90;
- false ``unsupported`` (1 - answered rate over the answerable questions) <= 0.05;
- short answer right >= 0.80, where "right" is token F1 >= 0.5 against the best of the listed
  answers (SQuAD normalisation, so an exact match is right too), counted over every
  answerable question: an abstention or a missing short answer is not right;
- abstention on the unanswerable questions: the issue's abstention target (abstention F1
  >= 0.60, stated for SQuAD with negatives) holds here too.

One run per module (15-40 s on 2 busy cores: slow). Each target is its own test: one that is
met passes, one that is not yet met is an xfail(strict=True) that says the figure measured
when it was written; when the answerer reaches the target, the xfail becomes an unexpected
pass (a failure), and its mark is to be removed.
"""

from __future__ import annotations

import json
import runpy
from typing import Any, Sequence

import pytest

from citeqa.evaluation.metrics import f1_of
from citeqa.evaluation.questions import NO_GOLD_DOCUMENT, choose_negatives, load_questions
from citeqa.evaluation.run import EvalRun, evaluate
from citeqa.evaluation.targets import InProcessTarget
from citeqa.index.ingest import read_inputs
from citeqa.index.sentences import split_sentences
from tests.support.corpus import PROJECT_ROOT, SEED_QUESTIONS, SEEDS_DIR

BUILD_SCRIPT = PROJECT_ROOT / "evaluation" / "sets" / "build_seed_questions.py"

TOP1_TARGET = 0.90
FALSE_UNSUPPORTED_TARGET = 0.05
SHORT_RIGHT_TARGET = 0.80
SHORT_RIGHT_F1 = 0.5
ABSTENTION_F1_TARGET = 0.60


def short_answer_right_rate(records: Sequence[dict[str, Any]], min_f1: float = SHORT_RIGHT_F1) -> float:
    """Share of the answerable questions whose short answer is right: token F1 with the best
    listed answer >= ``min_f1`` (an exact match has F1 1). No short answer is not right."""
    positive = [r for r in records if r["positive"]]
    return sum(r["short_f1"] >= min_f1 for r in positive) / len(positive) if positive else 0.0


def abstention_f1(report: dict[str, Any]) -> float:
    return f1_of(report["abstain_precision"] or 0.0, report["abstain_recall"] or 0.0)


@pytest.fixture(scope="module")
def seed_run(tmp_path_factory, embedder) -> EvalRun:
    """``citeqa eval evaluation/sets/seed_questions.jsonl`` in process: a fresh data directory
    without seeds, the questions' document (the seed article) indexed, every question asked."""
    from citeqa.api.services import Services
    from citeqa.api.settings import Settings

    data_dir = tmp_path_factory.mktemp("seed-questions") / "data"
    services = Services.open(Settings(data_dir=data_dir, seeds_dir=None), embedder=embedder)
    try:
        run = evaluate(InProcessTarget(services), load_questions(SEED_QUESTIONS))
    finally:
        services.close()
    r = run.report
    print("\nseed questions:", json.dumps({
        "questions": r["questions"], "answerable": r["questions_with_gold_indexed"],
        "unanswerable": r["negative_questions"], "top1_citation_accuracy": r["top1_citation_accuracy"],
        "false_unsupported": round(1 - r["answered_rate"], 4), "short_answer_right": round(
            short_answer_right_rate(run.records), 4), "short_answer_em": r["short_answer_em"],
        "short_answer_f1": r["short_answer_f1"], "abstain_precision": r["abstain_precision"],
        "abstain_recall": r["abstain_recall"], "abstention_f1": round(abstention_f1(r), 4),
        "citation_recall": r["citation_recall"], "quote_valid_rate": r["quote_valid_rate"],
        "ask_p50_ms": r["ask_p50_ms"]}))
    return run


# -- the set itself ------------------------------------------------------------------------


def test_the_set_is_natural_questions_with_sentence_evidence_in_the_seed_article():
    seed = read_inputs([SEEDS_DIR])[0]
    sentences = {(s.start, s.end) for s in split_sentences(seed.text)}
    questions = load_questions(SEED_QUESTIONS)
    answerable = [q for q in questions if q.answerable]
    unanswerable = [q for q in questions if not q.answerable]
    assert len(answerable) >= 60 and len(unanswerable) >= 15
    assert len({q.id for q in questions}) == len(questions)
    assert any(q.semantics == "all" for q in answerable)
    for q in questions:
        # Every question is asked of the article exactly as citeqa ingests it.
        assert [(d["doc_id"], d["title"], d["text"]) for d in q.documents] == [(seed.doc_id, seed.title, seed.text)]
    for q in answerable:
        assert q.answers and q.evidence, q.id
        for e in q.evidence:
            # The gold is one whole sentence as citeqa's splitter cuts it.
            assert e.doc_id == seed.doc_id and (e.start, e.end) in sentences, (q.id, e)
    for q in unanswerable:
        assert not q.answers and not q.evidence and not (q.gold_doc_ids & {seed.doc_id}), q.id


def test_the_set_is_what_its_script_writes():
    """The offsets come from the script (evaluation/sets/build_seed_questions.py): a change of
    the seed article, the splitter or the questions must be followed by rerunning it."""
    build = runpy.run_path(str(BUILD_SCRIPT))
    expected = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in build["rows"]())
    assert SEED_QUESTIONS.read_text(encoding="utf-8") == expected, f"stale: run python {BUILD_SCRIPT}"


def test_unanswerable_questions_are_negatives_whatever_is_indexed(tmp_path):
    doc = {"doc_id": "d", "title": "D", "text": "Ada wrote it."}
    rows = [{"id": "a", "question": "Who wrote it?", "answers": ["Ada"], "documents": [doc],
             "evidence": [{"doc_id": "d", "start": 0, "end": 13}]},
            {"id": "u", "question": "When?", "answerable": False, "documents": [doc]}]
    path = tmp_path / "q.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    answerable, unanswerable = load_questions(path)
    assert (answerable.answerable, unanswerable.answerable) == (True, False)
    assert unanswerable.gold_doc_ids == {NO_GOLD_DOCUMENT} and not unanswerable.gold_doc_ids & {"d"}
    # The share of negatives is of the answerable questions; the unanswerable are negatives already.
    assert choose_negatives([answerable, unanswerable], 0.5) == {"d"}
    assert choose_negatives([unanswerable], 0.5) == set()
    for bad in ({"answerable": "no"}, {"answerable": False, "answers": ["Ada"]},
                {"answerable": False, "evidence": [{"doc_id": "d", "start": 0, "end": 13}]}):
        path.write_text(json.dumps({"id": "x", "question": "?", **bad}) + "\n", encoding="utf-8")
        with pytest.raises(ValueError, match="q.jsonl:1: not an evaluation question"):
            load_questions(path)


@pytest.mark.slow
def test_the_run_counts_the_unanswerable_questions_as_negatives(seed_run):
    r = seed_run.report
    questions = load_questions(SEED_QUESTIONS)
    assert r["questions"] == len(questions)
    assert r["questions_with_gold_indexed"] == sum(q.answerable for q in questions)
    assert r["negative_questions"] == sum(not q.answerable for q in questions)
    assert r["config"]["documents_indexed"] == 1


@pytest.mark.slow
def test_every_quote_is_verbatim(seed_run):
    assert seed_run.report["quote_valid_rate"] == 1.0


# -- the targets ---------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason=("issue 14 item 2: top-1 0.364 with the fixed blend, "
            "0.818 with the listwise ranker, 0.833 with the gate at 0.09, "
            "0.818 on the Tantivy lexical index, 0.879 with the question's frame words left out"),
)
def test_the_right_sentence_comes_first(seed_run):
    assert seed_run.report["top1_citation_accuracy"] >= TOP1_TARGET


@pytest.mark.slow
def test_answerable_questions_are_rarely_refused(seed_run):
    # Met in session 27 (0.030: the question's frame verbs, "say", "think", "going", no longer
    # weigh as missing words); before: 0.485 with the raw cosine threshold, 0.091 with the gate.
    assert 1 - seed_run.report["answered_rate"] <= FALSE_UNSUPPORTED_TARGET


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason=("issue 14 item 1: 0.136 right with the rule-based short answers, "
            "0.485 from entities and parses, 0.636 with syntactic roles stored at ingest"),
)
def test_short_answers_are_right(seed_run):
    assert short_answer_right_rate(seed_run.records) >= SHORT_RIGHT_TARGET


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="issue 14 item 2: abstention F1 0.237 with the cosine threshold, 0.207 with the learned gate"
    " (P 0.33, R 0.15) at 0.105, 0.222 (P 0.43, R 0.15) at 0.09, 0.167 (P 0.50, R 0.10) in session 27",
)
def test_unanswerable_questions_are_refused(seed_run):
    assert abstention_f1(seed_run.report) >= ABSTENTION_F1_TARGET
