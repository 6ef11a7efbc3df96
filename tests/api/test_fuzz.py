"""Schemathesis over the app's own OpenAPI schema, in process (ASGI; real model, FAISS, SQLite).

Every operation in the schema (``GET /`` and ``/static/*`` are not in it: they serve the
playground's files), with data that fits the schema and data that does not (positive and
negative modes, plus Schemathesis' coverage cases). Checks on every response:

- no 5xx (``not_a_server_error``) and no stack trace in the body;
- its status is documented, and its body matches the documented schema (every 4xx as
  ``{"error": {"code", "message"}}``, see ``api/errors.py``); a streamed chat answer
  (``text/event-stream``) is exempt from the body check;
- an answer's citations resolve: ``text[start:end] == quote`` in the version they name.

Random chat bodies almost never end with a user's question, so some of them get a real
question appended (a schema hook), and the success path is fuzzed too.

Bounded and reproducible for CI: ``MAX_EXAMPLES`` per operation, derandomized, no example
database. The number of cases and any 5xx are printed in the terminal summary.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path
from urllib.parse import quote

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from tests.support.corpus import SEEDS_DIR, TROOPS_QUESTION, UNSUPPORTED_QUESTION

MAX_EXAMPLES = 50
STATS: Counter = Counter()  # (operation label, status) -> cases
SERVER_ERRORS: list[str] = []


def _openapi() -> dict:
    """The schema is a function of the code alone: an app that is never started gives it.
    (Built at collection, before any fixture: a directory of its own, no .env, so nothing is
    written to or read from the cwd.)"""
    from citeqa.api.app import create_app
    from citeqa.api.settings import Settings

    with tempfile.TemporaryDirectory(prefix="citeqa-schema-") as tmp:
        app = create_app(Settings(data_dir=Path(tmp) / "data", seeds_dir=SEEDS_DIR, _env_file=None))
        app.state.keys.close()
        return app.openapi()


schema = schemathesis.openapi.from_dict(_openapi())
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=MAX_EXAMPLES, deterministic=True,
)
schema.config.seed = 20_241_125
# The same cases on every run: literals harvested from the source come out in hash order,
# which changes from process to process.
schema.config.analysis.constants.enabled = False


QUESTIONS = [TROOPS_QUESTION, "Who is Russia's ambassador to Pyongyang?", UNSUPPORTED_QUESTION]


@schema.hook
def flatmap_body(context, body):
    if context.operation is None or context.operation.label != "POST /v1/chat/completions":
        return st.just(body)
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        return st.just(body)
    asked = [{**body, "messages": [*body["messages"], {"role": "user", "content": q}]} for q in QUESTIONS]
    return st.sampled_from([body, *asked])


class _Summary:
    """Prints what the fuzzing did at the end of the run, whatever the capture mode."""

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if not STATS:
            return
        by_op: dict[str, Counter] = {}
        for (op, status), n in sorted(STATS.items()):
            by_op.setdefault(op, Counter())[status] = n
        terminalreporter.section("schemathesis")
        terminalreporter.write_line(f"{sum(STATS.values())} cases over {len(by_op)} operations, "
                                    f"{len(SERVER_ERRORS)} with a 5xx")
        for op, statuses in by_op.items():
            terminalreporter.write_line(f"  {op}: {sum(statuses.values())} cases, {dict(sorted(statuses.items()))}")
        for error in SERVER_ERRORS[:20]:
            terminalreporter.write_line(f"  5xx: {error}")


@pytest.fixture(scope="module")
def fuzz_app(request, tmp_path_factory, embedder):
    from citeqa.api.app import create_app
    from citeqa.api.settings import Settings

    if not request.config.pluginmanager.has_plugin("citeqa-fuzz-summary"):
        request.config.pluginmanager.register(_Summary(), "citeqa-fuzz-summary")
    settings_ = Settings(data_dir=tmp_path_factory.mktemp("fuzz") / "data", seeds_dir=SEEDS_DIR)
    return create_app(settings_, embedder=embedder)


def _assert_citations_resolve(app, body: dict) -> None:
    from fastapi.testclient import TestClient

    client = TestClient(app)  # no lifespan of its own: Schemathesis is running the app's
    for c in body.get("citations") or []:
        # Quoted: a fuzzed id may hold "#", "?" or "/" (a raw "#" would end the path).
        doc = client.get(f"/v1/documents/{quote(c['doc_id'], safe='')}", params={"version": c["doc_version"]})
        assert doc.status_code == 200, doc.text
        assert doc.json()["text"][c["start"]:c["end"]] == c["quote"], c


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_no_server_errors_and_documented_responses(case, fuzz_app):
    # Schemathesis runs the app's lifespan (model, store, seeds) around each operation's test.
    response = case.call(app=fuzz_app)
    STATS[(case.operation.label, response.status_code)] += 1
    if response.status_code >= 500:
        SERVER_ERRORS.append(f"{response.status_code} {case.as_curl_command()}"[:2000])
    assert "Traceback" not in response.text
    checks = [not_a_server_error, status_code_conformance]
    content_type = (response.headers.get("content-type") or [""])[0]
    if not content_type.startswith("text/event-stream"):
        checks.append(response_schema_conformance)
    case.validate_response(response, checks=checks)
    if response.status_code == 200 and case.operation.label in ("POST /v1/ask", "POST /v1/chat/completions") \
            and content_type.startswith("application/json"):
        _assert_citations_resolve(fuzz_app, response.json())
