"""The throughput ratio ``citeqa bench`` prints (bench/throughput.py): most clients over one."""

from __future__ import annotations

from citeqa.bench.throughput import ROUTES, scaling


def _level(rate: float) -> dict[str, float]:
    return {"requests_per_s": rate}


def test_scaling_is_the_most_clients_over_one_client():
    assert scaling({"1": _level(50.0), "4": _level(90.0), "16": _level(160.0)}) == 3.2
    assert scaling({"16": _level(40.0), "1": _level(80.0)}) == 0.5  # order of the levels does not matter


def test_scaling_needs_one_client_and_another_level():
    assert scaling({}) is None
    assert scaling({"1": _level(50.0)}) is None
    assert scaling({"4": _level(50.0), "16": _level(90.0)}) is None
    assert scaling({"1": _level(0.0), "16": _level(90.0)}) is None  # nothing measured alone: no ratio


def test_each_route_sends_its_own_field():
    assert ROUTES == {"/v1/ask": "question", "/v1/search": "query"}
