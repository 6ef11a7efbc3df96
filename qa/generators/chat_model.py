"""What every chat-model generator shares: options, the prompt fitted to the context window,
streaming with a repetition guard, stopping when the answer is no longer wanted, and
generation figures (tokens, tokens/s)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Callable, Iterator, Sequence

from pydantic import Field

from citeqa.qa.citations import cut_repetition
from citeqa.qa.prompting import fit_prompt, load_template
from citeqa.qa.types import ChatTurn, Draft, DraftStream, GeneratorOptions, Passage, drain


class ChatModelOptions(GeneratorOptions):
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="0 for the same answer every time.")
    max_tokens: int = Field(256, ge=1, le=8192, description="Longest answer, in tokens.")
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    seed: int | None = Field(None, description="Sampling seed, for repeatable answers when temperature > 0.")


class ChatDraftStream(DraftStream):
    """A chat model's pieces, which another thread can stop (qa/streaming.py's ``Stoppable``):
    the model stops before its next piece, and a request still waiting for the model never
    starts. (Closing a generator is only possible from the thread reading it, and only
    between pieces; a stop is a flag, safe from anywhere.)"""

    def __init__(self, pieces: Iterator[str], shown: int | None, stopped: threading.Event,
                 wake: Callable[[], None]):
        super().__init__(pieces, shown=shown)
        self._stopped = stopped
        self._wake = wake

    def stop(self) -> None:
        self._stopped.set()
        self._wake()


class ChatModelGenerator:
    """A generator backed by a chat model. Subclasses supply ``_complete`` (the model's
    text pieces for a list of messages, ending early once ``stopped`` is set),
    ``count_tokens`` and ``context_window``; one whose requests wait for the model supplies
    ``_wake_waiters`` too."""

    name = "chat"
    description = ""
    Options: type[ChatModelOptions] = ChatModelOptions
    context_window = 2048

    def __init__(self, prompt: str | Path):
        self.template = load_template(prompt)

    def unavailable(self) -> str | None:
        """Why this generator cannot answer here (a missing package or setting), or None."""
        return None

    def count_tokens(self, text: str) -> int:
        # About 3 characters per token for English under common tokenizers: an
        # over-estimate, so a prompt that fits here fits the real model.
        return len(text) // 3 + 1

    def _complete(self, messages: list[dict[str, str]], options: ChatModelOptions,
                  usage: dict[str, float], stopped: threading.Event) -> Iterator[str]:
        raise NotImplementedError

    def _wake_waiters(self) -> None:
        """Called right after a request's ``stopped`` is set: wake whatever it may be
        waiting for (the model, busy with another request), so it gives up at once."""

    def generate(self, question: str, passages: Sequence[Passage], history: Sequence[ChatTurn] = (),
                 options: GeneratorOptions | None = None) -> Draft:
        return drain(self.stream(question, passages, history, options))

    def stream(self, question: str, passages: Sequence[Passage], history: Sequence[ChatTurn] = (),
               options: GeneratorOptions | None = None) -> DraftStream:
        opts = options if isinstance(options, self.Options) else self.Options.model_validate(
            options.model_dump() if options else {})
        if not passages:
            return DraftStream(iter(()), shown=0, declined=True)
        max_tokens = min(opts.max_tokens, self.context_window // 2)
        opts = opts.model_copy(update={"max_tokens": max_tokens})
        prompt = fit_prompt(self.template, question, passages, history, self.context_window - max_tokens,
                            self.count_tokens)
        usage: dict[str, float] = {"prompt_tokens": prompt.tokens}
        stopped = threading.Event()
        stream = ChatDraftStream(self._guarded(prompt.messages, opts, usage, stopped), prompt.shown, stopped,
                                 self._wake_waiters)
        stream.usage = usage  # filled in as the pieces are read
        return stream

    def _guarded(self, messages: list[dict[str, str]], options: ChatModelOptions, usage: dict[str, float],
                 stopped: threading.Event) -> Iterator[str]:
        """The model's pieces, timed; stops the model once it starts repeating itself, or
        once the answer is no longer wanted."""
        pieces = self._complete(messages, options, usage, stopped)
        text = ""
        tokens = 0
        t0 = time.perf_counter()
        try:
            # Looked at before each piece is asked for, the first too: between two pieces is
            # the one place a model can be left safely, and a stopped one never starts.
            while not stopped.is_set():
                piece = next(pieces, None)
                if piece is None:
                    break
                if not piece:
                    continue
                if tokens == 0:
                    usage["first_token_ms"] = round((time.perf_counter() - t0) * 1000, 2)
                tokens += 1
                text += piece
                yield piece
                if any(ch in piece for ch in ".!?\n") and cut_repetition(text) != text:
                    break
        finally:
            close = getattr(pieces, "close", None)
            if close is not None:
                close()  # stops the model or the upstream request
            elapsed = time.perf_counter() - t0
            usage.setdefault("completion_tokens", tokens)
            usage["generate_ms"] = round(elapsed * 1000, 2)
            # Decode speed: the tokens after the first over the time after it (the first
            # token's wait is prompt processing, reported as first_token_ms).
            decode_s = elapsed - usage.get("first_token_ms", 0) / 1000
            if tokens > 1 and decode_s > 0:
                usage["tokens_per_s"] = round((tokens - 1) / decode_s, 1)
