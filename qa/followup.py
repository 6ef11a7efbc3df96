"""What to search for when a chat question leans on earlier turns.

"And how many were wounded?" names no subject; searched alone it finds whatever mentions
the wounded. A follow-up (it opens with "and"/"what about", points back with a pronoun,
or has at most three content words) takes the previous user question as context: the
retriever uses it to choose documents (their BM25 over title and text), while sentences
are still scored by the follow-up alone. Searching the previous question and the
follow-up together brought the previous answer back first (3 of 6 cases right, fewer than
the follow-up alone, 4 of 6); as context for documents only, 5 of 6.
Measured on multi-turn cases in tests/qa/test_followup.py (docs/GENERATORS.md).
"""

from __future__ import annotations

from typing import Sequence

from citeqa.index.text import STOPWORDS, tokens
from citeqa.qa.types import ChatTurn

# A previous question is context up to a question's length (CITEQA_MAX_QUESTION_CHARS'
# default): however long a client's earlier turns, a follow-up reads no more of them
# than this, and adds no more than a question's worth of OR terms to the search.
MAX_CONTEXT_CHARS = 2_000

_OPENERS = ("and", "but", "so", "also", "then", "what about", "how about", "and what", "what else")
_POINTERS = frozenset("it its they them their theirs he him his she her hers this that these those there such".split())


def is_follow_up(question: str) -> bool:
    words = tokens(question)
    if not words:
        return False
    text = " ".join(words)
    if any(text == o or text.startswith(o + " ") for o in _OPENERS):
        return True
    if _POINTERS & set(words):
        return True
    return len([w for w in words if w not in STOPWORDS]) <= 3


def chat_context(question: str, history: Sequence[ChatTurn]) -> str | None:
    """The previous user question (its first MAX_CONTEXT_CHARS) when ``question`` is a
    follow-up, else None."""
    if not is_follow_up(question):
        return None
    for turn in reversed(history):
        previous = turn.content[:MAX_CONTEXT_CHARS].strip() if turn.role == "user" else ""
        if previous:
            return previous
    return None
