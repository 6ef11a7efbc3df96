"""The default generator: no language model, the answer is the best retrieved sentence."""

from __future__ import annotations

import re
from typing import Sequence

from citeqa.qa.types import ChatTurn, Draft, DraftStream, GeneratorOptions, Passage

# Ends like a sentence (or introduces a quote or list): terminal punctuation, perhaps
# inside closing quotes or brackets.
_ENDS_LIKE_SENTENCE = re.compile(r"[.!?…:;][\"'”’)\]]*$")
_WORD = re.compile(r"[^\W\d_]+")


def is_heading(text: str) -> bool:
    """Headlines, captions, bylines and link text: no sentence-final punctuation, and
    either very short or in title case. They share the question's words while stating no
    answer. A long unpunctuated line in sentence case (a splitter cut mid-sentence, as in
    "… carbon dioxide (CO") is still evidence."""
    if _ENDS_LIKE_SENTENCE.search(text.rstrip()):
        return False
    words = _WORD.findall(text)
    capitalised = sum(w[0].isupper() for w in words)
    return len(words) <= 4 or capitalised >= 0.6 * len(words)


class ExtractiveGenerator:
    """Answers with the best-ranked passage verbatim, cited by its number.

    The retriever's ranking puts the best supporting sentence first; a heading (a
    headline, a caption) yields to the best-ranked sentence. A verbatim sentence can
    never misquote its source.
    """

    name = "extractive"
    description = "No language model: the best-ranked sentence, verbatim (the default)."
    Options = GeneratorOptions  # none

    def __init__(self, **settings: object):
        if settings:
            raise TypeError(f"extractive has no settings, got: {', '.join(sorted(settings))}")

    def unavailable(self) -> str | None:
        return None

    def generate(self, question: str, passages: Sequence[Passage], history: Sequence[ChatTurn] = (),
                 options: GeneratorOptions | None = None) -> Draft:
        if not passages:
            return Draft(text="", declined=True, shown=0)
        best = next((p for p in passages if not is_heading(p.sentence.text)), passages[0])
        return Draft(text=f"{best.sentence.text} [{best.number}]")

    def stream(self, question: str, passages: Sequence[Passage], history: Sequence[ChatTurn] = (),
               options: GeneratorOptions | None = None) -> DraftStream:
        draft = self.generate(question, passages, history, options)
        return DraftStream(iter([draft.text]), shown=draft.shown, declined=draft.declined)
