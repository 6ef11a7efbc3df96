"""What every chat-model generator shares, on a model that writes from a script: the prompt
fitted to the context window, the repetition guard, stopping from another thread, and the
generation figures."""

from __future__ import annotations

import threading
import time
from typing import Iterator

from citeqa.qa.generators.chat_model import ChatDraftStream, ChatModelGenerator, ChatModelOptions
from citeqa.qa.streaming import Stoppable
from tests.contracts.generator import passages_for
from tests.support.corpus import TROOPS_QUESTION

CLAIM = "Kim Jong Un sent 11,000 to 12,000 troops [1]. "


class ScriptedChatModel(ChatModelGenerator):
    name = "scripted-chat"
    description = "A chat model that writes the pieces it was given."

    def __init__(self, pieces: list[str], context: int = 2048, seconds_per_piece: float = 0.0):
        super().__init__("cited_answer")
        self.pieces = pieces
        self.context_window = context
        self.seconds_per_piece = seconds_per_piece
        self.calls: list[tuple[list[dict[str, str]], ChatModelOptions]] = []
        self.closed = 0
        self.produced = 0
        self.woken = 0

    def _complete(self, messages: list[dict[str, str]], options: ChatModelOptions,
                  usage: dict[str, float], stopped: threading.Event) -> Iterator[str]:
        self.calls.append((messages, options))
        try:
            for piece in self.pieces:
                time.sleep(self.seconds_per_piece)
                self.produced += 1
                yield piece
        finally:
            self.closed += 1

    def _wake_waiters(self) -> None:
        self.woken += 1


def test_a_looping_model_is_stopped_at_the_first_repeat(generator_corpus):
    model = ScriptedChatModel([CLAIM] * 6)
    draft = model.generate(TROOPS_QUESTION, passages_for(generator_corpus, TROOPS_QUESTION))
    assert draft.text == CLAIM * 2  # the repeat is where the guard sees the loop; verification cuts it
    assert model.closed == 1  # the model was told to stop
    assert draft.usage["completion_tokens"] == 2 and draft.usage["prompt_tokens"] > 0
    assert {"first_token_ms", "generate_ms"} <= set(draft.usage)


def test_the_prompt_and_the_answer_share_the_context_window(generator_corpus):
    model = ScriptedChatModel([CLAIM], context=512)
    passages = passages_for(generator_corpus, TROOPS_QUESTION, k=20)
    draft = model.generate(TROOPS_QUESTION, passages, options=ChatModelOptions(max_tokens=8192))
    [(messages, options)] = model.calls
    assert options.max_tokens == 256  # at most half the window goes to the answer
    assert draft.usage["prompt_tokens"] <= 512 - 256
    assert draft.shown is not None and 1 <= draft.shown < len(passages)
    assert f"[{draft.shown}]" in messages[-1]["content"] and f"[{draft.shown + 1}]" not in messages[-1]["content"]


def test_no_passages_is_declined_without_calling_the_model():
    model = ScriptedChatModel([CLAIM])
    draft = model.generate(TROOPS_QUESTION, [])
    assert (draft.text, draft.declined, draft.shown) == ("", True, 0)
    assert model.calls == []


def test_a_stop_from_another_thread_ends_the_model_at_its_next_piece(generator_corpus):
    model = ScriptedChatModel([CLAIM] + [f"Troops went {i} times [1]. " for i in range(500)], seconds_per_piece=0.01)
    stream = model.stream(TROOPS_QUESTION, passages_for(generator_corpus, TROOPS_QUESTION))
    assert isinstance(stream, ChatDraftStream) and isinstance(stream, Stoppable)
    read: list[str] = []
    reader = threading.Thread(target=lambda: read.extend(stream))
    reader.start()
    while not read:
        time.sleep(0.005)
    stream.stop()  # the reader is inside the model's loop: only a flag can reach it
    reader.join(5)
    assert not reader.is_alive()
    assert model.closed == 1, "the model's generator was not closed"
    assert model.woken == 1, "a request waiting for the model would not have been woken"
    assert len(read) < 50 and model.produced <= len(read) + 1  # at most the piece being made when it stopped


def test_a_stream_stopped_before_it_starts_never_calls_the_model(generator_corpus):
    model = ScriptedChatModel([CLAIM])
    stream = model.stream(TROOPS_QUESTION, passages_for(generator_corpus, TROOPS_QUESTION))
    stream.stop()
    assert list(stream) == [] and model.produced == 0
