"""``citeqa stress fuzz`` bounded for CI: 200 Schemathesis cases over every operation of a
real ``citeqa serve``, none of them a 5xx, each counted by operation and status; and the
refusal to fuzz a remote server unless told to."""

from __future__ import annotations

import json

import pytest

from citeqa.bench.errors import BenchError
from citeqa.bench.stress_fuzz import run_fuzz


@pytest.mark.slow
def test_two_hundred_cases_over_every_operation_and_no_5xx():
    r = run_fuzz(cases=200)
    json.dumps(r)  # what --json writes
    assert r["ok"], {k: r[k] for k in ("server_error_examples", "transport_error_examples", "tracebacks")}
    assert r["cases"] >= 200 and r["server_errors_5xx"] == r["transport_errors"] == r["tracebacks"] == 0
    assert set(r["per_operation"]) == set(r["operations"])  # every operation in the schema was fuzzed
    assert {"POST /v1/ask", "POST /v1/chat/completions", "POST /v1/documents", "POST /v1/search",
            "DELETE /v1/documents/{doc_id}"} <= set(r["operations"])
    assert sum(row["cases"] for row in r["per_operation"].values()) == sum(r["statuses"].values()) == r["cases"]
    # Both kinds of data: accepted (2xx) and refused with a 4xx that says why.
    assert any(s.startswith("2") for s in r["statuses"]) and r["statuses"].get("422", 0) > 0
    assert r["per_operation"]["POST /v1/ask"]["statuses"].get("200", 0) > 0  # real questions got answers


def test_a_remote_server_is_not_fuzzed_unless_told_to():
    with pytest.raises(BenchError, match="allow-remote"):
        run_fuzz(url="http://192.0.2.1:8000", cases=1)

