"""The lexical half of retrieval: SQLite FTS5 with BM25 ranking.

Questions are turned into an OR of quoted terms so that any shared word can match and
BM25's term weights decide; quoting keeps FTS5 operators in user text inert.
"""

from __future__ import annotations

import re

_TOKENIZER = "tokenize = 'porter unicode61 remove_diacritics 2'"
FTS_TABLE_SQL = f"CREATE VIRTUAL TABLE IF NOT EXISTS sentence_fts USING fts5(text, {_TOKENIZER})"
# Whole documents (title + text) of live current versions, rowid = versions.id: a
# sentence in a document that matches the question as a whole is more likely evidence.
DOCUMENT_FTS_TABLE_SQL = f"CREATE VIRTUAL TABLE IF NOT EXISTS document_fts USING fts5(title, text, {_TOKENIZER})"

_TOKEN = re.compile(r"\w+", re.UNICODE)

# Function words that match nearly every sentence: dropping them keeps the OR query
# small (faster) without changing BM25's ranking much, since their IDF is near zero.
STOPWORDS = frozenset(
    """a an and are as at be been being but by can could did do does doing for from had has
    have having he her hers him his how i if in into is it its itself me my of on or our
    she so than that the their them then there these they this those to too was we were
    what when where which while who whom why will with would you your""".split()
)


def fts_query(text: str) -> str | None:
    """An FTS5 MATCH expression for free text, or None when it has no searchable word."""
    tokens = [t.lower() for t in _TOKEN.findall(text)]
    content = [t for t in tokens if t not in STOPWORDS] or tokens
    unique = list(dict.fromkeys(content))
    if not unique:
        return None
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in unique)
