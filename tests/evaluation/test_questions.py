"""Evaluation data: questions read with their evidence, bad lines named, negatives chosen."""

from __future__ import annotations

import json

import pytest

from citeqa.evaluation.metrics import Span
from citeqa.evaluation.questions import Question, choose_negatives, load_corpus, load_questions


def test_questions_are_read_with_their_evidence(tmp_path):
    path = tmp_path / "q.jsonl"
    rows = [{"id": 7, "question": "Who?", "answers": ["Ada"], "documents": [{"doc_id": "d", "text": "Ada."}],
             "evidence": [{"doc_id": "d", "start": "0", "end": 4}], "meta": {"evidence_semantics": "all"}},
            {"id": "q2", "question": "What?"}]
    path.write_text(json.dumps(rows[0]) + "\n\n" + json.dumps(rows[1]) + "\n", encoding="utf-8")
    first, second = load_questions(path)
    assert (first.id, first.evidence, first.semantics, first.gold_doc_ids) == ("7", [Span("d", 0, 4)], "all", {"d"})
    assert (second.answers, second.evidence, second.semantics, second.gold_doc_ids) == ([], [], "any", set())
    assert [q.id for q in load_questions(path, limit=1)] == ["7"]


def test_a_bad_question_names_its_line(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text('{"id": 1, "question": "ok?"}\n{"question": "no id"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"q.jsonl:2: not an evaluation question"):
        load_questions(path)


def test_the_corpus_is_one_document_a_line(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text('{"doc_id": "a", "text": "A."}\n\n{"doc_id": "b", "text": "B."}\n', encoding="utf-8")
    assert [d["doc_id"] for d in load_corpus(path)] == ["a", "b"]


def test_negatives_drop_whole_documents():
    qs = [Question(str(i), "q", [], [], [Span(f"d{i % 5}", 0, 1)], "any") for i in range(20)]
    left_out = choose_negatives(qs, 0.2, seed=1)
    lost = [q for q in qs if q.gold_doc_ids <= left_out]
    assert len(lost) == 4 and len(left_out) == 1
    assert choose_negatives(qs, 0.2, seed=1) == left_out
    assert choose_negatives(qs, 0.0) == set()
