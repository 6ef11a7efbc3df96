"""Generators over HTTP (api/routes/generators.py): GET /v1/generators, choosing one in
/v1/ask, clear errors when one is unknown, misconfigured or its upstream fails, and the
llamacpp generator answering in process."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from citeqa.api.app import create_app
from citeqa.api.settings import Settings
from tests.support.citations import assert_citation_contract
from tests.support.corpus import SEEDS_DIR, TROOPS_QUESTION
from tests.support.faulty_upstream import FaultyUpstream
from tests.support.llm import requires_llm
from tests.support.servers import free_port


def test_generators_are_listed_with_the_default_and_how_to_enable_the_rest(client):
    r = client.get("/v1/generators")
    assert r.status_code == 200
    body = r.json()
    assert body["default"] == "extractive"
    by_name = {g["name"]: g for g in body["generators"]}
    assert {"extractive", "llamacpp", "openai"} <= set(by_name)
    assert by_name["extractive"]["default"] and by_name["extractive"]["available"]
    assert by_name["openai"]["available"] is False and "CITEQA_OPENAI_BASE_URL" in by_name["openai"]["reason"]
    assert by_name["llamacpp"]["options"]["max_tokens"]["type"] == "integer"


def test_unknown_generator_is_a_422_listing_the_installed_ones(client):
    r = client.post("/v1/ask", json={"question": TROOPS_QUESTION, "generator": "gpt-17"})
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "unknown_generator"
    assert "extractive" in r.json()["error"]["message"] and "openai" in r.json()["error"]["message"]


@pytest.mark.parametrize("options, fragment", [
    ({"temprature": 0.1}, "Valid options: temperature"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"temperature": "hot"}, "temperature"),
])
def test_bad_generator_options_are_a_422_listing_the_valid_ones(client, options, fragment):
    r = client.post("/v1/ask", json={"question": TROOPS_QUESTION, "generator": "openai",
                                     "generator_options": options})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "invalid_generator_options"
    assert fragment in r.json()["error"]["message"]


def test_extractive_takes_no_options(client):
    r = client.post("/v1/ask", json={"question": TROOPS_QUESTION, "generator_options": {"temperature": 0}})
    assert r.status_code == 422 and "Valid options: none" in r.json()["error"]["message"]
    r = client.post("/v1/ask", json={"question": TROOPS_QUESTION, "generator_options": {}})
    assert r.status_code == 200 and r.json()["generation"]["generator"] == "extractive"


def test_an_unconfigured_generator_says_how_to_configure_it(client):
    r = client.post("/v1/ask", json={"question": TROOPS_QUESTION, "generator": "openai"})
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "generator_unavailable"
    assert "CITEQA_OPENAI_BASE_URL" in r.json()["error"]["message"]


def _app_with_upstream(tmp_path, embedder, url: str, **extra):
    settings = Settings(data_dir=tmp_path / "data", seeds_dir=SEEDS_DIR, openai_base_url=url,
                        openai_timeout_s=extra.pop("timeout", 5.0), openai_retries=1, **extra)
    return TestClient(create_app(settings, embedder=embedder))


@pytest.mark.parametrize("script, status, code, fragment", [
    (["500"], 502, "upstream_error", "model crashed: out of memory"),
    (["hang"], 504, "upstream_timeout", "did not answer"),
])
def test_upstream_failures_are_502_or_504_with_the_upstream_message(tmp_path, embedder, script, status, code, fragment):
    with FaultyUpstream(script) as up, _app_with_upstream(tmp_path, embedder, up.url, timeout=0.5) as c:
        r = c.post("/v1/ask", json={"question": TROOPS_QUESTION, "generator": "openai"})
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code and fragment in r.json()["error"]["message"]


def test_nothing_listening_upstream_is_a_502(tmp_path, embedder):
    with _app_with_upstream(tmp_path, embedder, f"http://127.0.0.1:{free_port()}/v1") as c:
        r = c.post("/v1/ask", json={"question": TROOPS_QUESTION, "generator": "openai"})
    assert r.status_code == 502 and "cannot reach" in r.json()["error"]["message"]


def test_a_faithful_upstream_answer_is_verified_and_cited(tmp_path, embedder):
    with FaultyUpstream(["ok"]) as up, _app_with_upstream(tmp_path, embedder, up.url) as c:
        body = c.post("/v1/ask", json={"question": TROOPS_QUESTION, "generator": "openai"}).json()
        assert body["status"] == "answered", body
        assert "11,000 to 12,000" in body["citations"][0]["quote"]
        assert body["generation"]["generator"] == "openai"
        assert_citation_contract(c, body)
    # The prompt carried numbered passages with their document titles.
    prompt = up.requests[0]["messages"][-1]["content"]
    assert "[1] (Russia Sends Wounded Soldiers" in prompt and TROOPS_QUESTION in prompt


@requires_llm
def test_llamacpp_over_http_returns_verified_citations(client):
    r = client.post("/v1/ask", json={"question": TROOPS_QUESTION, "generator": "llamacpp",
                                     "generator_options": {"max_tokens": 96}})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["generation"]["generator"] == "llamacpp"
    assert body["generation"]["completion_tokens"] <= 96 and body["generation"]["tokens_per_s"] > 0
    assert body["status"] in ("answered", "partial", "unsupported")
    assert_citation_contract(client, body)
    assert (body["status"] == "unsupported") == (not body["citations"])
