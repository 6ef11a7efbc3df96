"""Words of free text: the one tokenizer and stop-word list that every word count shares.

Lexical search (FTS5 and PostgreSQL BM25) turns a question into its content words;
verification compares a claim's content words with a quote's; follow-up detection counts
a question's. They must agree on what a word is, so they all read it from here.
"""

from __future__ import annotations

import re

# A word is a run of Unicode letters, digits and underscores.
TOKEN = re.compile(r"\w+", re.UNICODE)

# Function words that match nearly every sentence: dropping them keeps an OR query small
# (faster) without changing BM25's ranking much, since their IDF is near zero; a claim's
# support is judged by the words that carry its meaning.
STOPWORDS = frozenset(
    """a an and are as at be been being but by can could did do does doing for from had has
    have having he her hers him his how i if in into is it its itself me my of on or our
    she so than that the their them then there these they this those to too was we were
    what when where which while who whom why will with would you your""".split()
)


def tokens(text: str) -> list[str]:
    """The words of ``text``, lower-cased, in order (repeats kept)."""
    return [t.lower() for t in TOKEN.findall(text)]


def content_words(text: str) -> list[str]:
    """The words of ``text`` that are not stop words, in order; all of its words when
    every one is a stop word ("Who is it?" still has something to match)."""
    words = tokens(text)
    return [w for w in words if w not in STOPWORDS] or words


def query_words(text: str) -> list[str]:
    """The distinct content words of a question, in order: what lexical search ORs together."""
    return list(dict.fromkeys(content_words(text)))
