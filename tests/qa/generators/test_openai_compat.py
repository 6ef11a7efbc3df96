"""The openai generator keeps the generator contract against a real OpenAI-compatible server
(llama-cpp-python's own), and against a real server that fails each failure has its kind."""

from __future__ import annotations

import time

import pytest

from citeqa.qa import registry
from citeqa.qa.generators.openai_compat import OpenAICompatGenerator
from citeqa.qa.types import GeneratorError
from tests.contracts.generator import GeneratorContract, passages_for
from tests.support.corpus import TROOPS_QUESTION
from tests.support.faulty_upstream import ANSWER, FaultyUpstream
from tests.support.servers import free_port


@pytest.fixture(scope="module")
def openai_generator(llama_server):
    return registry.create("openai", base_url=llama_server, model="smollm2", context=2048, timeout_s=60)


class TestOpenAICompat(GeneratorContract):
    @pytest.fixture
    def generator(self, openai_generator):
        return openai_generator

    def test_options_reach_the_upstream(self, generator, generator_corpus):
        passages = passages_for(generator_corpus, TROOPS_QUESTION)
        short = generator.generate(TROOPS_QUESTION, passages, options=generator.Options(max_tokens=3))
        assert 1 <= short.usage["completion_tokens"] <= 3


# -- against an upstream that fails ------------------------------------------------------------


def fast(url: str, **kw) -> OpenAICompatGenerator:
    return OpenAICompatGenerator(base_url=url, backoff_s=0.01, **{"timeout_s": 5.0, **kw})


def test_retries_a_rate_limit_then_answers(generator_corpus):
    passages = passages_for(generator_corpus, TROOPS_QUESTION)
    with FaultyUpstream(["429", "500", "ok"]) as up:
        draft = fast(up.url, retries=2, api_key="sk-test").generate(TROOPS_QUESTION, passages)
    assert draft.text == ANSWER
    assert len(up.requests) == 3
    assert up.headers[0]["Authorization"] == "Bearer sk-test"
    assert up.requests[0]["stream"] is True and up.requests[0]["model"] == "default"


def test_a_server_that_ignores_stream_still_works(generator_corpus):
    passages = passages_for(generator_corpus, TROOPS_QUESTION)
    with FaultyUpstream(["json"]) as up:
        draft = fast(up.url).generate(TROOPS_QUESTION, passages)
    assert draft.text == ANSWER and draft.usage["completion_tokens"] == 9


@pytest.mark.parametrize("script, kind, message, requests", [
    (["500"], "upstream_error", "upstream 500: model crashed: out of memory", 2),
    (["400"], "upstream_error", "model 'gpt-x' does not exist", 1),  # a client error is not retried
    (["garbage"], "upstream_error", "not JSON", 1),  # failures after the response began are not retried
    (["error-event"], "upstream_error", "context length exceeded", 1),
    (["drop"], "upstream_error", "cannot reach", 1),
    (["504"], "timeout", "upstream 504: the model took too long", 2),
])
def test_upstream_failures_carry_their_kind_and_the_upstream_message(generator_corpus, script, kind, message,
                                                                     requests):
    passages = passages_for(generator_corpus, TROOPS_QUESTION)
    with FaultyUpstream(script) as up:
        with pytest.raises(GeneratorError) as err:
            fast(up.url, retries=1).generate(TROOPS_QUESTION, passages)
    assert err.value.kind == kind
    assert message in err.value.message
    assert len(up.requests) == requests


def test_a_hanging_upstream_is_a_timeout_not_a_hang(generator_corpus):
    passages = passages_for(generator_corpus, TROOPS_QUESTION)
    with FaultyUpstream(["hang"]) as up:
        t0 = time.monotonic()
        with pytest.raises(GeneratorError) as err:
            fast(up.url, timeout_s=0.5, retries=1).generate(TROOPS_QUESTION, passages)
        elapsed = time.monotonic() - t0
    assert err.value.kind == "timeout"
    assert elapsed < 2.5  # the 3 s hang was cut short at the timeout, retries included


def test_nothing_listening_is_an_upstream_error_after_the_retries(generator_corpus):
    passages = passages_for(generator_corpus, TROOPS_QUESTION)
    with pytest.raises(GeneratorError) as err:
        fast(f"http://127.0.0.1:{free_port()}/v1", retries=2).generate(TROOPS_QUESTION, passages)
    assert err.value.kind == "upstream_error" and "cannot reach" in err.value.message


def test_no_server_configured_is_unavailable(generator_corpus):
    with pytest.raises(GeneratorError) as err:
        OpenAICompatGenerator().generate(TROOPS_QUESTION, passages_for(generator_corpus, TROOPS_QUESTION))
    assert err.value.kind == "unavailable" and "CITEQA_OPENAI_BASE_URL" in err.value.message
