"""Percentiles on values whose right answers are known, for each method a figure uses."""

from __future__ import annotations

import pytest

from citeqa.bench.percentiles import percentile, percentiles


def test_nearest_rank_is_a_measured_value():
    values = list(range(1, 101))
    assert percentile(values, 50, "inverted_cdf") == 50 and percentile(values, 95, "inverted_cdf") == 95
    assert percentile([7.0], 95, "inverted_cdf") == 7.0
    assert percentile([3.0, 1.0, 2.0], 50, "inverted_cdf") == 2.0  # order does not matter


def test_linear_interpolates_and_nearest_rounds_the_rank():
    values = [10.0, 20.0, 30.0, 40.0]
    assert percentile(values, 50) == 25.0  # halfway between the middle two
    assert percentile(values, 95) == pytest.approx(38.5)
    assert percentile(values, 95, "nearest") == 40.0  # rank 0.95 * 3 = 2.85 -> 3


def test_no_values_give_none():
    for method in ("linear", "nearest", "inverted_cdf"):
        assert percentile([], 50, method) is None
    assert percentiles([], (50, 95, 99)) == {"p50_ms": None, "p95_ms": None, "p99_ms": None}


def test_figures_are_named_and_rounded():
    figures = percentiles([1.0, 2.0, 4.0], prefix="ask_http_", digits=1)
    assert figures == {"ask_http_p50_ms": 2.0, "ask_http_p95_ms": 3.8}
    assert percentiles([1.0, 2.0, 4.0], (99,)) == {"p99_ms": pytest.approx(3.96)}
