"""The openai generator keeps the generator contract against a real OpenAI-compatible server
(llama-cpp-python's own), and against a real server that fails each failure has its kind."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

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


# -- an answer that is no longer wanted: the upstream stream is closed, no retry is made -------


class SlowStreamingUpstream:
    """An OpenAI-compatible server that streams a word every 20 ms, up to 1,000, and notes
    how many it wrote before its client closed the connection."""

    def __init__(self) -> None:
        self.written = 0
        self.client_left = threading.Event()
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", 0)))
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("connection", "close")
                self.end_headers()
                try:
                    for i in range(1000):
                        event = json.dumps({"choices": [{"delta": {"content": f"word{i} "}}]})
                        self.wfile.write(f"data: {event}\n\n".encode())
                        self.wfile.flush()
                        upstream.written += 1
                        time.sleep(0.02)
                except (BrokenPipeError, ConnectionResetError):
                    upstream.client_left.set()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_stopped_answer_closes_the_upstream_stream(generator_corpus):
    upstream = SlowStreamingUpstream()
    try:
        stream = fast(upstream.url).stream(TROOPS_QUESTION, passages_for(generator_corpus, TROOPS_QUESTION))
        read: list[str] = []
        reader = threading.Thread(target=lambda: read.extend(stream), daemon=True)
        reader.start()
        deadline = time.monotonic() + 5
        while not read and time.monotonic() < deadline:
            time.sleep(0.01)
        stream.stop()  # from another thread, mid-answer: the client of this answer left
        reader.join(2)
        assert not reader.is_alive() and read
        # The upstream learns it at its next write: the connection was closed, not kept.
        assert upstream.client_left.wait(2), "the upstream connection was left open"
        assert upstream.written < 100
    finally:
        upstream.close()


def test_a_stopped_answer_makes_no_further_attempt(generator_corpus):
    passages = passages_for(generator_corpus, TROOPS_QUESTION)
    with FaultyUpstream(["500", "ok"]) as up:
        stream = OpenAICompatGenerator(base_url=up.url, backoff_s=5.0, retries=2).stream(TROOPS_QUESTION, passages)
        reader = threading.Thread(target=lambda: list(stream), daemon=True)
        t0 = time.monotonic()
        reader.start()
        while not up.requests:  # the first attempt failed; the generator now waits 5 s to retry
            time.sleep(0.01)
        stream.stop()
        reader.join(2)
        assert not reader.is_alive() and time.monotonic() - t0 < 2
    assert len(up.requests) == 1
