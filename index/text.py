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


# Terms of one lexical query. Questions have far fewer distinct content words (at most
# 15 in the 2,000 SQuAD dev questions), so this never changes a question's search; a
# pasted page is searched by its 64 longest words.
MAX_QUERY_WORDS = 64


def tokens(text: str) -> list[str]:
    """The words of ``text``, lower-cased, in order (repeats kept)."""
    return [t.lower() for t in TOKEN.findall(text)]


def content_words(text: str) -> list[str]:
    """The words of ``text`` that are not stop words, in order; all of its words when
    every one is a stop word ("Who is it?" still has something to match)."""
    words = tokens(text)
    return [w for w in words if w not in STOPWORDS] or words


def query_words(text: str) -> list[str]:
    """The distinct content words of a question, in order: what lexical search ORs together.
    At most MAX_QUERY_WORDS of them, the longest (the first of equal length) when there
    are more: the cost of an OR query grows with its terms (a megabyte of random words
    made thousands of them and took minutes), and the longer words are the rarer ones,
    which carry BM25's score."""
    words = list(dict.fromkeys(content_words(text)))
    if len(words) <= MAX_QUERY_WORDS:
        return words
    kept = set(sorted(words, key=len, reverse=True)[:MAX_QUERY_WORDS])  # a stable sort: first come first
    return [w for w in words if w in kept]
