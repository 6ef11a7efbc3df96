"""A scripted Generator: writes exactly what a test tells it to, the way a misbehaving
language model might (invented markers, unsupported claims, loops, answers from memory)."""

from __future__ import annotations

from typing import Sequence

from pydantic import Field

from citeqa.qa.types import ChatTurn, Draft, DraftStream, GeneratorOptions, Passage, drain


class ScriptedOptions(GeneratorOptions):
    shout: bool = Field(False, description="Upper-case the draft (lets tests see options arrive).")


class ScriptedGenerator:
    name = "scripted"
    description = "Writes the draft it was given."
    Options = ScriptedOptions

    def __init__(self, text: str = "", declined: bool = False, pieces: Sequence[str] | None = None,
                 shown: int | None = None):
        self.pieces = list(pieces) if pieces is not None else [text]
        self.declined = declined
        self.shown = shown
        self.calls: list[tuple[str, list[Passage]]] = []
        self.histories: list[list[ChatTurn]] = []
        self.closed = 0

    def unavailable(self) -> str | None:
        return None

    def generate(self, question: str, passages: Sequence[Passage], history: Sequence[ChatTurn] = (),
                 options: GeneratorOptions | None = None) -> Draft:
        return drain(self.stream(question, passages, history, options))

    def stream(self, question: str, passages: Sequence[Passage], history: Sequence[ChatTurn] = (),
               options: GeneratorOptions | None = None) -> DraftStream:
        self.calls.append((question, list(passages)))
        self.histories.append(list(history))
        shout = isinstance(options, ScriptedOptions) and options.shout

        def pieces():
            try:
                for piece in self.pieces:
                    yield piece.upper() if shout else piece
            finally:
                self.closed += 1

        return DraftStream(pieces(), shown=self.shown, declined=self.declined)
