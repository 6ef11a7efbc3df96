"""``citeqa stress load`` bounded for CI (a real ``citeqa serve``, real concurrent clients),
plus its options and its refusal to load a remote server unless told to."""

from __future__ import annotations

import json

import pytest

from citeqa.bench.errors import BenchError
from citeqa.bench.stress_load import is_loopback_url, parse_mix, run_load


@pytest.mark.slow
def test_load_with_one_and_four_clients_has_no_errors_and_reports_figures():
    r = run_load(clients=(1, 4), duration=3)
    json.dumps(r)  # what --json writes
    assert r["errors"] == 0 and [level["clients"] for level in r["levels"]] == [1, 4]
    for level in r["levels"]:
        assert level["errors"] == 0 and level["error_kinds"] == {}, level
        assert 2.9 < level["elapsed_s"] < 3 + 5, level  # the duration bounds each level
        assert level["requests"] > 0 and level["req_per_s"] > 0
        assert 0 < level["p50_ms"] <= level["p95_ms"] <= level["p99_ms"]
        assert set(level["per_operation"]) == {"ask", "search", "ingest"}
        assert sum(op["requests"] for op in level["per_operation"].values()) == level["requests"]
        # The questions are about the seed article: most are answered, with citations.
        assert level["ask_status"].get("answered", 0) > level["ask_status"].get("unsupported", 0), level


def test_options_are_parsed_and_remote_urls_recognised():
    assert parse_mix("ask=6,search=3,ingest=1") == {"ask": 6, "search": 3, "ingest": 1}
    assert parse_mix("search=1") == {"ask": 0, "search": 1, "ingest": 0}
    for bad in ("ask=x", "delete=1", "ask=0"):
        with pytest.raises(ValueError):
            parse_mix(bad)
    assert all(map(is_loopback_url, ["http://127.0.0.1:8000", "http://localhost:1", "http://[::1]:2",
                                     "http://127.8.0.1"]))
    assert not any(map(is_loopback_url, ["http://10.0.0.1:8000", "https://example.com", "http://0.0.0.0:80",
                                         "not a url", "http:///no-host"]))
    with pytest.raises(BenchError, match="allow-remote"):
        run_load(url="http://192.0.2.1:8000", duration=0.1)
