"""The metrics on hand-made cases whose right numbers are known."""

from __future__ import annotations

import pytest

from citeqa.evaluation.metrics import (
    Span,
    evidence_recall,
    exact_match,
    first_full_rank,
    normalize_answer,
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

