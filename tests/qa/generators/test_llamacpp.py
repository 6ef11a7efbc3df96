"""The llamacpp generator: the packaged SmolLM2 GGUF in process keeps the generator contract."""

from __future__ import annotations

import threading
import time

import pytest

from citeqa.qa import registry
from citeqa.qa.generators.llamacpp import LlamaCppGenerator, packaged_gguf_path
from citeqa.qa.types import GeneratorError
from tests.contracts.generator import GeneratorContract, passages_for
from tests.support.corpus import TROOPS_QUESTION
from tests.support.llm import requires_llm


@pytest.fixture(scope="module")
def llamacpp_generator():
    return registry.create("llamacpp", context=2048)  # the model loads once, on first use


@requires_llm
class TestLlamaCpp(GeneratorContract):
    @pytest.fixture
    def generator(self, llamacpp_generator):
        return llamacpp_generator


@requires_llm
def test_the_default_model_is_the_packaged_gguf():
    path = packaged_gguf_path()
    assert path is not None and path.suffix == ".gguf" and path.is_file()
    assert LlamaCppGenerator().model_path == path


def test_a_missing_model_is_unavailable_with_the_reason(tmp_path, generator_corpus):
    generator = LlamaCppGenerator(model_path=tmp_path / "nowhere.gguf")
    reason = generator.unavailable()  # no GGUF there (or no llama-cpp-python at all)
    assert reason
    with pytest.raises(GeneratorError) as err:
        generator.generate(TROOPS_QUESTION, passages_for(generator_corpus, TROOPS_QUESTION))
    assert (err.value.kind, err.value.message) == ("unavailable", reason)


# -- a client that goes away: the model stops between tokens, a queued request never starts -----


class FakeLlama:
    """Stands in for ``llama_cpp.Llama`` (no model needed): a token every 10 ms, up to 1,000,
    counting completions started, tokens made and streams closed."""

    def __init__(self) -> None:
        self.started = 0
        self.tokens = 0
        self.closed = 0

    def tokenize(self, data: bytes, add_bos: bool = False, special: bool = True) -> list[int]:
        return list(range(len(data) // 4 + 1))

    def create_chat_completion(self, messages, stream, **options):
        assert stream
        self.started += 1

        def chunks():
            try:
                for i in range(1000):
                    time.sleep(0.01)
                    self.tokens += 1
                    yield {"choices": [{"delta": {"content": f"word{i} "}}]}
            finally:
                self.closed += 1

        return chunks()


def _reader(stream) -> tuple[threading.Thread, list[str]]:
    read: list[str] = []
    thread = threading.Thread(target=lambda: read.extend(stream), daemon=True)
    thread.start()
    return thread, read


def _wait_until(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_a_stopped_request_leaves_the_queue_and_a_running_one_stops_between_tokens(generator_corpus):
    generator = LlamaCppGenerator(context=2048)
    fake = generator._llm = FakeLlama()  # what _model() would load
    passages = passages_for(generator_corpus, TROOPS_QUESTION)
    running = generator.stream(TROOPS_QUESTION, passages)
    queued = generator.stream(TROOPS_QUESTION, passages)
    running_thread, running_read = _reader(running)
    _wait_until(lambda: running_read)
    queued_thread, queued_read = _reader(queued)
    _wait_until(lambda: generator._turns.waiting == 1)

    queued.stop()  # its client left while it waited for the model
    queued_thread.join(1)
    assert not queued_thread.is_alive() and queued_read == [] and fake.started == 1

    running.stop()  # its client left mid-answer
    running_thread.join(1)
    assert not running_thread.is_alive() and fake.closed == 1
    assert fake.tokens <= len(running_read) + 1 < 100

    after = generator.stream(TROOPS_QUESTION, passages)  # the model is free at once
    after_thread, after_read = _reader(after)
    _wait_until(lambda: after_read)
    after.stop()
    after_thread.join(1)
    assert fake.started == 2 and fake.closed == 2
