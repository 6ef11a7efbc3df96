"""The lexical half of the embedded store: SQLite FTS5 tables ranked by BM25.

Questions are turned into an OR of quoted terms so that any shared word can match and
BM25's term weights decide; quoting keeps FTS5 operators in user text inert.
"""

from __future__ import annotations

from citeqa.index.text import query_words

_TOKENIZER = "tokenize = 'porter unicode61 remove_diacritics 2'"
FTS_TABLE_SQL = f"CREATE VIRTUAL TABLE IF NOT EXISTS sentence_fts USING fts5(text, {_TOKENIZER})"
# Whole documents (title + text) of live current versions, rowid = versions.id: a
# sentence in a document that matches the question as a whole is more likely evidence.
DOCUMENT_FTS_TABLE_SQL = f"CREATE VIRTUAL TABLE IF NOT EXISTS document_fts USING fts5(title, text, {_TOKENIZER})"


def fts_query(text: str) -> str | None:
    """An FTS5 MATCH expression for free text, or None when it has no searchable word."""
    words = query_words(text)
    if not words:
        return None
    return " OR ".join('"' + w.replace('"', '""') + '"' for w in words)
