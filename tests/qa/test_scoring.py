"""The scorer on hand-made cases whose right numbers are known."""

from __future__ import annotations

import pytest

from citeqa.qa.evaluate import Question, choose_negatives, summarise, threshold_curve
from citeqa.qa.scoring import (
    Span,
    evidence_recall,
    exact_match,
    first_full_rank,
    normalize_answer,
    percentile,
    score_citations,
    strip_markers,
    token_f1,
)


def test_squad_normalisation():
    assert normalize_answer("The  Carolina Panthers!") == "carolina panthers"
    assert normalize_answer("an apple, a pear") == "apple pear"
    assert exact_match("the Denver Broncos", ["Denver Broncos", "Broncos"]) == 1.0
    assert exact_match("Denver", ["Denver Broncos"]) == 0.0


def test_token_f1_known_values():
    # pred {denver, broncos, won}, gold {denver, broncos}: P = 2/3, R = 1 -> F1 = 0.8
    assert token_f1("Denver Broncos won", ["Denver Broncos"]) == pytest.approx(0.8)
    # best over golds
    assert token_f1("Broncos", ["Denver Broncos", "Broncos"]) == 1.0
    assert token_f1("Panthers", ["Denver Broncos"]) == 0.0
    assert token_f1("", ["x"]) == 0.0


def test_strip_markers():
    assert strip_markers("It opened in 1911 [1]. It closed [2][3].") == "It opened in 1911. It closed."


GOLD_ANY = [Span("d", 100, 150)]
GOLD_ALL = [Span("d", 0, 50), Span("e", 10, 40)]


def test_citation_scores_any_semantics():
    cited = [Span("d", 140, 200), Span("d", 0, 99), Span("x", 100, 150)]
    s = score_citations(GOLD_ANY, cited, "any")
    assert (s.correct, s.returned, s.recall, s.top1) == (1, 3, 1.0, 1.0)
    # adjacent spans do not overlap (end-exclusive); same offsets in another doc do not count
    s = score_citations(GOLD_ANY, [Span("d", 150, 160), Span("x", 100, 150)], "any")
    assert (s.correct, s.recall, s.top1) == (0, 0.0, 0.0)


def test_citation_scores_all_semantics():
    s = score_citations(GOLD_ALL, [Span("e", 30, 60)], "all")
    assert s.recall == 0.5 and s.top1 == 1.0
    s = score_citations(GOLD_ALL, [Span("d", 49, 51), Span("e", 39, 41)], "all")
    assert s.recall == 1.0
    assert evidence_recall(GOLD_ALL, [Span("e", 30, 60)], "any") == 1.0


def test_search_rank_for_any_and_all():
    ranked = [Span("x", 0, 5), Span("e", 10, 20), Span("d", 0, 10)]
    assert first_full_rank(GOLD_ALL, ranked, "any", 10) == 2
    assert first_full_rank(GOLD_ALL, ranked, "all", 10) == 3
    assert first_full_rank(GOLD_ALL, ranked, "all", 2) is None


def test_percentile_nearest_rank():
    values = list(range(1, 101))
    assert percentile(values, 50) == 50 and percentile(values, 95) == 95
    assert percentile([7.0], 95) == 7.0 and percentile([], 50) is None


def record(**kw):
    base = dict(positive=True, negative=False, abstained=False, status="answered", citations_valid=1,
                citations_correct=1, citations_returned=1, citation_recall=1.0, top1=1.0, search_rank=1,
                support=0.6, answer_em=0.0, answer_f1=0.5, short_em=1.0, short_f1=1.0, citation_chars=[100],
                ask_ms=10.0, search_ms=5.0)
    base.update(kw)
    return base


def test_summary_of_hand_made_records():
    records = [
        record(),  # right
        record(citations_correct=0, citations_returned=2, citation_recall=0.0, top1=0.0, search_rank=3,
               citations_valid=2, citation_chars=[50, 150], short_em=0.0, short_f1=0.0),  # wrong
        record(positive=False, negative=True, abstained=True, status="unsupported", citations_valid=0,
               citations_correct=0, citations_returned=0, citation_recall=0.0, top1=0.0, search_rank=None,
               support=0.1, citation_chars=[]),  # rightly abstained
        record(positive=False, negative=True, citations_correct=0, top1=0.0, search_rank=None, support=0.4),
    ]
    s = summarise(records)
    assert s["questions"] == 4 and s["questions_with_gold_indexed"] == 2
    assert s["quote_valid_rate"] == 1.0  # 4 valid of 4 returned
    assert s["citation_precision"] == pytest.approx(1 / 3, abs=1e-4)  # 1 correct of 3 returned
    assert s["citation_recall"] == 0.5
    assert s["citation_f1"] == pytest.approx(0.4, abs=1e-4)
    assert s["top1_citation_accuracy"] == 0.5
    assert (s["search_hit_at_1"], s["search_hit_at_5"], s["search_mrr"]) == (0.5, 1.0, pytest.approx(0.6667, abs=1e-4))
    assert s["short_answer_f1"] == 0.5
    assert (s["abstain_precision"], s["abstain_recall"]) == (1.0, 0.5)
    assert s["mean_citation_chars"] == pytest.approx((100 + 50 + 150 + 100) / 4)


def test_threshold_curve_counts_answers_and_abstentions():
    records = [record(support=0.8), record(support=0.3, top1=0.0),
               record(positive=False, negative=True, support=0.2, top1=0.0)]
    curve = {p["threshold"]: p for p in threshold_curve(records, steps=11)}
    assert curve[0.0]["accuracy"] == pytest.approx(1 / 3, abs=1e-3)  # answers all, 1 right
    # at 0.5: answers only the 0.8 one (right), abstains on the other two (one is a negative)
    assert curve[0.5]["accuracy"] == pytest.approx(2 / 3, abs=1e-3)
    assert curve[0.5]["abstain_recall"] == 1.0
    assert curve[1.0]["answered_rate"] == 0.0


def test_negatives_drop_whole_documents():
    qs = [Question(str(i), "q", [], [], [Span(f"d{i % 5}", 0, 1)], "any") for i in range(20)]
    left_out = choose_negatives(qs, 0.2, seed=1)
    lost = [q for q in qs if q.gold_doc_ids <= left_out]
    assert len(lost) == 4 and len(left_out) == 1
    assert choose_negatives(qs, 0.2, seed=1) == left_out
    assert choose_negatives(qs, 0.0) == set()
