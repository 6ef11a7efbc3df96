"""The default generator: no language model, the answer is the best retrieved sentence."""

from __future__ import annotations

import re
from typing import Sequence

from qa.types import ChatTurn, Draft, Passage


# Ends like a sentence: terminal punctuation, perhaps inside closing quotes or brackets.
_FULL_SENTENCE = re.compile(r"[.!?…][\"'”’)\]]*$")


def is_full_sentence(text: str) -> bool:
    """Headlines, captions, bylines and link text rarely end with terminal punctuation;
    they often share the question's words while stating no answer."""
    return bool(_FULL_SENTENCE.search(text.rstrip()))


class ExtractiveGenerator:
    """Answers with the best-ranked passage verbatim, cited by its number.

    The retriever's ranking puts the best supporting sentence first; a fragment (a
    headline, a caption) yields to the best-ranked full sentence. A verbatim sentence can
    never misquote its source.
    """

    name = "extractive"

    def __init__(self, **options: object):
        if options:
            raise TypeError(f"extractive takes no options, got: {', '.join(sorted(options))}")

    def generate(self, question: str, passages: Sequence[Passage], history: Sequence[ChatTurn] = ()) -> Draft:
        if not passages:
            return Draft(text="", declined=True)
        best = next((p for p in passages if is_full_sentence(p.sentence.text)), passages[0])
        return Draft(text=f"{best.sentence.text} [{best.number}]")
