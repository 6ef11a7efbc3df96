"""``citeqa stress fuzz``: Schemathesis over every operation of a real server's own OpenAPI
schema, thousands of cases (10,000 by default), and what each operation answered. The bar:
no response is a 5xx, none carries a stack trace, none fails to arrive, and the server logs
no traceback. The test suite keeps a smaller, in-process run (tests/api/test_fuzz.py).

Cases come in rounds: each round gives every operation, in positive mode (data the schema
allows) and negative mode (data it does not), an equal share of what is left to run, with
a seed of its own, so an operation whose inputs run out early (``GET /healthz`` has one)
takes only what it can and the others make up the number. As in the test suite, some chat
bodies get a real question appended, so the answering path is fuzzed too and not only
refused. Each response is also checked against the schema (its status documented, its
body conforming); a mismatch is reported beside the 5xx, but only a 5xx, a stack trace, a
transport error or a traceback in the server log fails the run.

Every 5xx and transport error comes with a curl command that reproduces it.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import httpx

from citeqa.bench.errors import BenchError
from citeqa.bench.processes import running_server
from citeqa.bench.stress_load import ingest_seed_article, is_loopback_url

Log = Callable[[str], None]
QUESTIONS = ["How many troops did North Korea send?", "Who is Russia's ambassador to Pyongyang?",
             "What is the boiling point of tungsten?"]
REQUEST_TIMEOUT_S = 60.0
MAX_EXAMPLES = 20  # reproductions kept per kind of problem


@dataclass
class FuzzTally:
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)  # (operation, status) -> cases
    server_errors: list[dict[str, Any]] = field(default_factory=list)
    transport_errors: list[dict[str, Any]] = field(default_factory=list)
    nonconforming: Counter[str] = field(default_factory=Counter)  # operation -> cases
    nonconforming_examples: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: {"5xx": 0, "transport": 0, "stack_traces": 0})

    @property
    def cases(self) -> int:
        return sum(self.statuses.values()) + self.counts["transport"]


_MIN_SHARE = 3  # cases per operation and mode in a round, however few are left to make

def run_fuzz(url: str | None = None, cases: int = 10_000, seed: int = 0, max_minutes: float | None = None,
             allow_remote: bool = False, api_key: str | None = None,
             log: Log = lambda message: None) -> dict[str, Any]:
    """At least ``cases`` cases (fewer only if ``max_minutes`` runs out first) against
    ``url`` or a server started here on 127.0.0.1 holding the seed article."""
    import requests

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    if url and not (allow_remote or is_loopback_url(url)):
        raise BenchError(f"{url} is not a loopback address; fuzzing writes to it (pass --allow-remote)")
    tally = FuzzTally()
    result: dict[str, Any] = {"cases_asked": cases, "seed": seed, "cpu_count": os.cpu_count(),
                              "loadavg_start": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="citeqa-fuzz-") as tmp, ExitStack() as stack:
        log_path: Path | None = None
        try:
            if url is None:
                log_path = Path(tmp) / "serve.log"
                url = stack.enter_context(running_server(Path(tmp) / "data", log_path)).url
                ingest_seed_article(url)
            url = url.rstrip("/")
            spec = httpx.get(f"{url}/openapi.json", headers=headers, timeout=REQUEST_TIMEOUT_S).json()
        except httpx.HTTPError as exc:
            raise BenchError(f"cannot reach {url}: {exc}") from exc
        operations = _operations(spec)
        result["url"], result["operations"] = url, [op.label for op in operations]
        session = stack.enter_context(requests.Session())
        deadline = time.monotonic() + max_minutes * 60 if max_minutes else None
        started = time.monotonic()
        rounds = 0
        while tally.cases < cases and (deadline is None or time.monotonic() < deadline):
            before = tally.cases
            pairs = [(op, mode) for op in operations for mode in _modes()]
            for op, mode in pairs:
                # A round reaches every operation (a few cases each once ``cases`` is met), so
                # a short run still fuzzes the whole schema; only the deadline cuts it short.
                share = max(_MIN_SHARE, -(-(cases - tally.cases) // len(pairs)))
                _fuzz(op, mode, share, seed * 1_000 + rounds, lambda case: _call(case, url, session, headers, tally),
                      deadline)
                if deadline is not None and time.monotonic() >= deadline:
                    break
            rounds += 1
            log(f"round {rounds}: {tally.cases} cases ({tally.counts['5xx']} 5xx)")
            if tally.cases == before:
                raise BenchError("no operation yields any more cases")
        elapsed = time.monotonic() - started
        server_log = log_path.read_text(errors="replace") if log_path else ""
    result.update(_figures(tally, elapsed, rounds))
    result["tracebacks"] = server_log.count("Traceback")
    result["loadavg_end"] = os.getloadavg()
    result["ok"] = (tally.counts["5xx"] == 0 and tally.counts["transport"] == 0 and tally.counts["stack_traces"] == 0
                    and result["tracebacks"] == 0)
    return result


def _operations(spec: dict[str, Any]) -> list[Any]:
    import schemathesis
    from hypothesis import strategies as st
    from schemathesis.core.result import Err

    schema = schemathesis.openapi.from_dict(spec)

    @schema.hook
    def flatmap_body(context: Any, body: Any) -> Any:
        # Random chat bodies almost never end with a user's question: give some of them one.
        label = context.operation.label if context.operation is not None else ""
        if label != "POST /v1/chat/completions" or not isinstance(body, dict) \
                or not isinstance(body.get("messages"), list):
            return st.just(body)
        asked = [{**body, "messages": [*body["messages"], {"role": "user", "content": q}]} for q in QUESTIONS]
        return st.sampled_from([body, *asked])

    operations = []
    for found in schema.get_all_operations():
        if isinstance(found, Err):
            raise BenchError(f"the schema describes an operation wrongly: {found.err()}")
        operations.append(found.ok())
    return operations


def _modes() -> list[Any]:
    from schemathesis import GenerationMode

    return [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]


def _fuzz(operation: Any, mode: Any, examples: int, seed: int, call: Callable[[Any], None],
          deadline: float | None) -> None:
    """Up to ``examples`` cases of ``operation`` in ``mode``, each handed to ``call``."""
    from hypothesis import HealthCheck, Phase, Verbosity, given, settings
    from hypothesis import seed as hypothesis_seed
    from hypothesis.errors import HypothesisException

    try:
        strategy = operation.as_strategy(generation_mode=mode)
    except Exception:  # nothing to negate (an operation without inputs): positive mode covers it
        return

    @hypothesis_seed(seed)
    @settings(max_examples=examples, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck), verbosity=Verbosity.quiet)
    @given(strategy)
    def run(case: Any) -> None:
        if deadline is None or time.monotonic() < deadline:
            call(case)

    try:
        run()
    except HypothesisException:  # could not generate (more) valid data: take what there was
        pass


def _call(case: Any, url: str, session: Any, headers: dict[str, str], tally: FuzzTally) -> None:
    import requests
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

    label = case.operation.label
    try:
        response = case.call(base_url=url, session=session, headers=headers, timeout=REQUEST_TIMEOUT_S)
    except requests.RequestException as exc:
        tally.counts["transport"] += 1
        if len(tally.transport_errors) < MAX_EXAMPLES:
            tally.transport_errors.append({"operation": label, "error": f"{type(exc).__name__}: {exc}"[:300],
                                           "curl": case.as_curl_command(base_url=url)[:2000]})
        return
    tally.statuses[(label, response.status_code)] += 1
    text = response.content[:200_000].decode("utf-8", "replace")
    if response.status_code >= 500 or "Traceback" in text:
        tally.counts["5xx" if response.status_code >= 500 else "stack_traces"] += 1
        if len(tally.server_errors) < MAX_EXAMPLES:
            tally.server_errors.append({"operation": label, "status": response.status_code, "body": text[:500],
                                        "curl": case.as_curl_command(base_url=url)[:2000]})
        return
    content_type = (response.headers.get("content-type") or [""])[0]
    checks = [not_a_server_error, status_code_conformance]
    if not content_type.startswith("text/event-stream"):  # a streamed answer has no body schema
        checks.append(response_schema_conformance)
    try:
        case.validate_response(response, checks=checks)
    except Exception as exc:  # a check's failure: reported, not fatal
        tally.nonconforming[label] += 1
        if len(tally.nonconforming_examples) < MAX_EXAMPLES:
            first = str(exc).strip().splitlines()[:3]
            tally.nonconforming_examples.append(f"{label} → {response.status_code}: {' '.join(first)}"[:400])


def _figures(tally: FuzzTally, elapsed: float, rounds: int) -> dict[str, Any]:
    per_operation: dict[str, dict[str, Any]] = {}
    for (op, status), n in sorted(tally.statuses.items()):
        row = per_operation.setdefault(op, {"cases": 0, "statuses": {}, "nonconforming": tally.nonconforming[op]})
        row["cases"] += n
        row["statuses"][str(status)] = n
    histogram: Counter[int] = Counter()
    for (_, status), n in tally.statuses.items():
        histogram[status] += n
    return {"cases": tally.cases, "rounds": rounds, "elapsed_s": round(elapsed, 1),
            "cases_per_s": round(tally.cases / max(elapsed, 1e-9), 1), "per_operation": per_operation,
            "statuses": {str(k): v for k, v in sorted(histogram.items())}, "server_errors_5xx": tally.counts["5xx"],
            "stack_traces": tally.counts["stack_traces"], "transport_errors": tally.counts["transport"],
            "server_error_examples": tally.server_errors, "transport_error_examples": tally.transport_errors,
            "nonconforming": sum(tally.nonconforming.values()),
            "nonconforming_examples": tally.nonconforming_examples}
