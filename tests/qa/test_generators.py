"""Every built-in generator passes the contract; the openai one against a real
OpenAI-compatible server (llama-cpp-python's own) and against a real server that fails."""

from __future__ import annotations

import time

import pytest

from citeqa.qa import registry
from citeqa.qa.generators.extractive import ExtractiveGenerator
from citeqa.qa.generators.llamacpp import LlamaCppGenerator
from citeqa.qa.generators.openai_compat import OpenAICompatGenerator
from citeqa.qa.prompting import PromptError, fit_prompt, load_template, parse_template
from citeqa.qa.types import ChatTurn, GeneratorError
from tests.contracts.generator import GeneratorContract, generator_corpus, passages_for  # noqa: F401 (fixture)
from tests.support.corpus import TROOPS_QUESTION
from tests.support.faulty_upstream import ANSWER, FaultyUpstream
from tests.support.llm import requires_llm
from tests.support.scripted import ScriptedGenerator
from tests.support.servers import free_port


class TestExtractive(GeneratorContract):
    has_context_window = False

    @pytest.fixture
    def generator(self):
        return registry.create("extractive")


class TestScripted(GeneratorContract):
    has_context_window = False

    @pytest.fixture
    def generator(self):
        return ScriptedGenerator(pieces=["Kim Jong Un sent ", "11,000 to 12,000 ", "troops [1]."])

    def test_no_passages_is_declined_without_calling_a_model(self, generator):
        pytest.skip("a script writes what it is told, passages or not")


@pytest.fixture(scope="module")
def llamacpp_generator():
    return registry.create("llamacpp", context=2048)  # the model loads once, on first use


@pytest.fixture(scope="module")
def openai_generator(llama_server):
    return registry.create("openai", base_url=llama_server, model="smollm2", context=2048, timeout_s=60)


@requires_llm
class TestLlamaCpp(GeneratorContract):
    @pytest.fixture
    def generator(self, llamacpp_generator):
        return llamacpp_generator


class TestOpenAICompat(GeneratorContract):
    @pytest.fixture
    def generator(self, openai_generator):
        return openai_generator

    def test_options_reach_the_upstream(self, generator, generator_corpus):
        passages = passages_for(generator_corpus, TROOPS_QUESTION)
        short = generator.generate(TROOPS_QUESTION, passages, options=generator.Options(max_tokens=3))
        assert 1 <= short.usage["completion_tokens"] <= 3


# -- the registry -------------------------------------------------------------------------------


def test_built_ins_register_through_entry_points():
    assert {"extractive", "llamacpp", "openai"} <= set(registry.available())
    assert isinstance(registry.create("extractive"), ExtractiveGenerator)
    assert isinstance(registry.create("llamacpp"), LlamaCppGenerator)  # cheap: no model loaded yet
    assert isinstance(registry.create("openai"), OpenAICompatGenerator)
    with pytest.raises(registry.UnknownGenerator, match="installed: .*extractive.*llamacpp.*openai"):
        registry.create("gpt-17")
    with pytest.raises(TypeError, match="no setting"):
        registry.create("llamacpp", temperature=0.3)


def test_pool_lists_what_is_installed_and_why_something_cannot_answer():
    pool = registry.GeneratorPool("extractive", lambda name: {"model_path": "/nowhere.gguf"} if name == "llamacpp" else {})
    infos = {i.name: i for i in pool.describe()}
    assert infos["extractive"].default and infos["extractive"].available
    assert not infos["openai"].available and "CITEQA_OPENAI_BASE_URL" in infos["openai"].reason
    assert not infos["llamacpp"].available and "/nowhere.gguf" in infos["llamacpp"].reason
    assert "temperature" in infos["openai"].options and infos["extractive"].options == {}
    with pytest.raises(GeneratorError) as err:
        pool.get("openai", {"temperature": 0.1})
    assert err.value.status == 503


def test_options_are_validated_with_the_valid_ones_listed():
    gen = registry.create("openai")
    assert registry.parse_options(gen, {"temperature": 0.5}).temperature == 0.5
    with pytest.raises(registry.InvalidGeneratorOptions, match="Valid options: temperature .*max_tokens"):
        registry.parse_options(gen, {"temprature": 0.5})
    with pytest.raises(registry.InvalidGeneratorOptions, match="max_tokens"):
        registry.parse_options(gen, {"max_tokens": -1})
    with pytest.raises(registry.InvalidGeneratorOptions, match="Valid options: none"):
        registry.parse_options(registry.create("extractive"), {"temperature": 0})


# -- prompts ------------------------------------------------------------------------------------


def test_prompt_templates_are_plain_files_with_named_placeholders(tmp_path):
    for name in ("cited_answer", "cited_answer_small"):
        t = load_template(name)
        assert t.system and "{question}" in t.user and "{passages}" in t.user
    custom = tmp_path / "mine.txt"
    custom.write_text("[user]\nQ: {question}\nP: {passages}\nJSON stays: {\"a\": 1} {other}\n")
    t = load_template(custom)
    assert t.system == ""
    assert t.render_user("why?", "[1] x") == "Q: why?\nP: [1] x\nJSON stays: {\"a\": 1} {other}"
    with pytest.raises(PromptError, match="needs \\{passages\\}"):
        parse_template("[user]\nQ: {question}")
    with pytest.raises(PromptError, match="cited_answer"):
        load_template("no-such-template")


def test_fit_prompt_drops_history_then_passages(generator_corpus):
    passages = passages_for(generator_corpus, TROOPS_QUESTION, k=10)
    template = load_template("cited_answer")
    history = [ChatTurn("user", "old question " * 50), ChatTurn("assistant", "old answer " * 50)]
    count = lambda text: len(text) // 3 + 1  # noqa: E731
    full = fit_prompt(template, TROOPS_QUESTION, passages, history, 100_000, count)
    assert full.shown == 10 and len(full.messages) == 4
    assert full.messages[-1]["content"].count("\n[") == 10
    tight = fit_prompt(template, TROOPS_QUESTION, passages, history, full.tokens - 400, count)
    assert tight.shown == 10 and len(tight.messages) == 2  # history went first
    tighter = fit_prompt(template, TROOPS_QUESTION, passages, [], tight.tokens - 150, count)
    assert 1 <= tighter.shown < 10 and tighter.tokens <= tight.tokens - 150
    assert f"[{tighter.shown}]" in tighter.messages[-1]["content"]
    assert f"[{tighter.shown + 1}]" not in tighter.messages[-1]["content"]
    squeezed = fit_prompt(template, "why " * 500, passages, [], 200, count)
    assert squeezed.shown == 1 and squeezed.tokens <= 200


# -- the openai generator against a failing upstream -------------------------------------------


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


@pytest.mark.parametrize("script, status, message", [
    (["500"], 502, "upstream 500: model crashed: out of memory"),
    (["400"], 502, "model 'gpt-x' does not exist"),
    (["garbage"], 502, "not JSON"),
    (["error-event"], 502, "context length exceeded"),
    (["drop"], 502, "cannot reach"),
])
def test_upstream_failures_become_502_with_the_upstream_message(generator_corpus, script, status, message):
    passages = passages_for(generator_corpus, TROOPS_QUESTION)
    with FaultyUpstream(script) as up:
        with pytest.raises(GeneratorError) as err:
            fast(up.url, retries=1).generate(TROOPS_QUESTION, passages)
    assert err.value.status == status
    assert message in err.value.message
    if script == ["400"]:
        assert len(up.requests) == 1  # a client error is not retried


def test_a_hanging_upstream_is_a_504_not_a_hang(generator_corpus):
    passages = passages_for(generator_corpus, TROOPS_QUESTION)
    with FaultyUpstream(["hang"]) as up:
        t0 = time.monotonic()
        with pytest.raises(GeneratorError) as err:
            fast(up.url, timeout_s=0.5, retries=1).generate(TROOPS_QUESTION, passages)
        elapsed = time.monotonic() - t0
    assert err.value.status == 504
    assert elapsed < 2.5  # the 3 s hang was cut short at the timeout, retries included


def test_nothing_listening_is_a_502_after_the_retries(generator_corpus):
    passages = passages_for(generator_corpus, TROOPS_QUESTION)
    with pytest.raises(GeneratorError) as err:
        fast(f"http://127.0.0.1:{free_port()}/v1", retries=2).generate(TROOPS_QUESTION, passages)
    assert err.value.status == 502 and "cannot reach" in err.value.message
