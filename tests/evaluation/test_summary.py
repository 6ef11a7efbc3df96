"""The figures over a run, on hand-made records whose right numbers are known."""

from __future__ import annotations

import pytest

from citeqa.evaluation.summary import best_threshold, summarise, threshold_curve


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


def test_latency_percentiles_are_measured_values():
    # Nearest rank, never an interpolation: the p50 of 10, 20, 30, 40 ms is 20 ms, not 25.
    s = summarise([record(ask_ms=ms, search_ms=ms / 10) for ms in (40.0, 10.0, 30.0, 20.0)])
    assert (s["ask_p50_ms"], s["ask_p95_ms"], s["search_p50_ms"]) == (20.0, 40.0, 2.0)
    assert summarise([])["ask_p50_ms"] is None


def test_generation_figures():
    made = [{"generator": "llamacpp", "generate_ms": ms, "first_token_ms": ms / 4, "tokens_per_s": 20.0,
             "completion_tokens": 30} for ms in (100.0, 300.0, 200.0)]
    records = [record(generation=g, verifier_citations=1, dropped_citations=1) for g in made]
    s = summarise(records + [record(generation={"generator": "extractive"})])
    assert s["generator"] == "extractive, llamacpp"
    assert (s["generate_p50_ms"], s["generate_p95_ms"], s["first_token_p50_ms"]) == (200.0, 300.0, 50.0)
    assert s["tokens_per_s_p50"] == 20.0 and s["completion_tokens_mean"] == 30
    assert s["dropped_citations"] == 3 and s["verifier_citation_rate"] == 0.75


def test_threshold_curve_counts_answers_and_abstentions():
    records = [record(support=0.8), record(support=0.3, top1=0.0),
               record(positive=False, negative=True, support=0.2, top1=0.0)]
    curve = {p["threshold"]: p for p in threshold_curve(records, steps=11)}
    assert curve[0.0]["accuracy"] == pytest.approx(1 / 3, abs=1e-3)  # answers all, 1 right
    # at 0.5: answers only the 0.8 one (right), abstains on the other two (one is a negative)
    assert curve[0.5]["accuracy"] == pytest.approx(2 / 3, abs=1e-3)
    assert curve[0.5]["abstain_recall"] == 1.0
    assert curve[1.0]["answered_rate"] == 0.0


def test_the_best_threshold_is_the_lowest_within_noise_of_the_best():
    curve = [{"threshold": 0.1, "accuracy": 0.70}, {"threshold": 0.2, "accuracy": 0.799},
             {"threshold": 0.3, "accuracy": 0.80}, {"threshold": 0.4, "accuracy": 0.75}]
    assert best_threshold(curve)["threshold"] == 0.2
    assert best_threshold(curve, tolerance=0.0)["threshold"] == 0.3


def test_reliability_bins_predicted_against_observed_answers():
    from citeqa.evaluation.summary import reliability

    def record(probability: float, positive: bool, rank: int | None) -> dict:
        return {"probability": probability, "positive": positive, "negative": not positive, "search_rank": rank}

    records = [record(0.95, True, 1), record(0.92, True, 2), record(0.15, False, None), record(0.12, True, 1)]
    bins = {b["low"]: b for b in reliability(records)}
    assert set(bins) == {0.1, 0.9}
    assert bins[0.9]["questions"] == 2 and bins[0.9]["observed"] == 0.5
    assert bins[0.9]["predicted"] == pytest.approx(0.935)
    assert bins[0.1]["observed"] == 0.5  # the negative never counts as answered
