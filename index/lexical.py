"""What the embedded store's lexical search used to be: SQLite FTS5 tables ranked by BM25.

Lexical search is now Tantivy (index/tantivy_lexical.py); data directories written before
it hold these FTS5 tables, which the store drops on open.
"""

from __future__ import annotations

OLD_FTS_TABLES = ("sentence_fts", "document_fts")
