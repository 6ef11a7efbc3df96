"""The embedded store's Tantivy lexical index: a cache of SQLite rebuilt or caught up on
open, user text searched as words, replaced and deleted documents never coming back."""

from __future__ import annotations

import json
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from citeqa.index.embedded_store import EmbeddedStore
from citeqa.index.scope import scope_from_request
from tests.contracts.samples import DIMENSION, OTHER_TEXT, V1_TEXT, V2_TEXT, put

ARTICLES = {
    "lighthouse": V1_TEXT,
    "bakery": OTHER_TEXT,
    "volcano": "The volcano erupted at dawn. Ash fell on three villages. Scientists measured the plume.",
    "syntax": "The title field holds the name. Stars (*) and parentheses mark AND and OR in queries.",
}
QUERIES = ["Which storms hit the coast?", "What fell on the villages?", "bread butter", "title stars",
           "lighthouse keeper"]


def fill(store: EmbeddedStore) -> None:
    for doc_id, text in ARTICLES.items():
        put(store, doc_id, text)


def results(store: EmbeddedStore) -> list[list[tuple[str, int, float]]]:
    sentences = [[(h.sentence.doc_id, h.sentence.index, round(h.score, 4)) for h in store.lexical_search(q, 20)]
                 for q in QUERIES]
    documents = [[(d, 0, round(score, 4)) for d, score in store.lexical_document_search(q, 20)] for q in QUERIES]
    return sentences + documents


def mark_file(store: EmbeddedStore) -> Path:
    return store.data_dir / "lexical" / "applied.json"


@pytest.fixture
def data_dir(tmp_path):
    return tmp_path / "data"


@pytest.mark.parametrize("damage", ["deleted", "no-mark", "garbage-mark", "other-database", "behind"])
def test_a_missing_foreign_or_stale_lexical_index_is_rebuilt_on_open(data_dir, damage):
    store = EmbeddedStore(data_dir, DIMENSION)
    fill(store)
    store.delete("volcano")
    before = results(store)
    assert any(before[:4]) and any(before[5:])
    mark = mark_file(store)
    store.close()
    saved = json.loads(mark.read_text())
    if damage == "deleted":
        shutil.rmtree(data_dir / "lexical")
    elif damage == "no-mark":
        mark.unlink()
    elif damage == "garbage-mark":
        mark.write_text("{not json")
    elif damage == "other-database":
        mark.write_text(json.dumps({**saved, "epoch": "another"}))
    else:  # the index applied none of the log: every change is replayed (harmlessly twice)
        mark.write_text(json.dumps({**saved, "applied": 0}))

    again = EmbeddedStore(data_dir, DIMENSION)
    try:
        if damage == "behind":  # replayed deletes stay in Tantivy's term statistics until merged
            assert [[hit[:2] for hit in r] for r in results(again)] == [[hit[:2] for hit in r] for r in before]
        else:
            assert results(again) == before
        assert json.loads(mark.read_text())["applied"] == saved["applied"]
    finally:
        again.close()


def test_writes_behind_the_index_are_applied_on_open(data_dir, monkeypatch):
    """A store killed after its commit to SQLite but before Tantivy's: the log holds the
    change, and the next open applies it."""
    store = EmbeddedStore(data_dir, DIMENSION)
    fill(store)
    assert store.lexical.wait_for(store.lexical_mark())
    applied = store.lexical.applied
    monkeypatch.setattr(store.lexical, "changed", lambda: None)
    monkeypatch.setattr(store.lexical, "catch_up", lambda: False)
    store.lexical._closed = True  # the committer stops: nothing more reaches Tantivy
    put(store, "bakery", "Bakers in Nantes sell brioche.")
    store.delete("lighthouse")
    assert store.lexical._thread is not None
    store.lexical._thread.join()
    assert json.loads(mark_file(store).read_text())["applied"] == applied
    store.lexical._release()
    store._close_connections()

    again = EmbeddedStore(data_dir, DIMENSION)
    try:
        found = again.lexical_search("brioche Nantes", 5)
        assert [h.sentence.text for h in found] == ["Bakers in Nantes sell brioche."]
        assert again.lexical_search("croissants butter", 5) == []
        assert again.lexical_search("lighthouse keeper", 5) == []
        assert "lighthouse" not in {d for d, _ in again.lexical_document_search("lighthouse keeper", 5)}
    finally:
        again.close()


@pytest.mark.parametrize("query", ['title:x', "AND", "OR", "NOT", '"quoted', '"stars"', "(parentheses", ")",
                                   "*", "stars*", "title:(stars OR parentheses)", "+stars -title", "a^2", "~",
                                   "field:[a TO z]", "{}", "\\", "/regex/", "'", "\x00", "  "])
def test_query_syntax_in_user_text_is_searched_as_words(data_dir, query):
    with closing(EmbeddedStore(data_dir, DIMENSION)) as store:
        fill(store)
        found = store.lexical_search(query, 10)
        documents = store.lexical_document_search(query, 10)
        scoped = store.lexical_search(query, 10, scope_from_request(None, doc_ids=["syntax", "bakery"]))
        words = {w for w in ("title", "stars", "parentheses", "and", "not", "or") if w in query.lower()}
        if words & {"title", "stars", "parentheses"}:
            assert found and all(h.sentence.doc_id == "syntax" for h in found)
            assert documents[0][0] == "syntax"
            assert scoped and all(h.sentence.doc_id == "syntax" for h in scoped)


def test_replaced_and_deleted_documents_never_come_back(data_dir):
    store = EmbeddedStore(data_dir, DIMENSION)
    try:
        fill(store)
        assert store.lexical_search("lighthouse keeper", 5)
        put(store, "lighthouse", V2_TEXT)  # replaces V1's sentences
        v1_only = [w for w in set(V1_TEXT.lower().split()) - set(V2_TEXT.lower().split()) if w.isalpha()]
        for hit in store.lexical_search(" ".join(v1_only), 50):
            assert hit.sentence.doc_id != "lighthouse" or hit.sentence.text in V2_TEXT
        store.delete("bakery")
        assert store.lexical_search("croissants butter", 5) == []
        assert "bakery" not in {d for d, _ in store.lexical_document_search("croissants butter bakers", 5)}
        store.close()
        store = EmbeddedStore(data_dir, DIMENSION)
        assert store.lexical_search("croissants butter", 5) == []
        # Raw Tantivy holds no entry of a replaced or deleted version once the log is applied.
        with closing(sqlite3.connect(store.db_path)) as conn:
            live = {r[0] for r in conn.execute("SELECT id FROM sentences WHERE active = 1")}
        indexed = {i for q in QUERIES + ["croissants butter bakers lyon"] for i, _ in
                   store.lexical.search_sentences(q.lower().split(), 100)}
        assert indexed and indexed <= live
    finally:
        store.close()


def test_a_directory_from_before_tantivy_drops_its_fts_tables_and_searches(data_dir):
    with closing(EmbeddedStore(data_dir, DIMENSION)) as store:
        fill(store)
        before = results(store)
    shutil.rmtree(data_dir / "lexical")
    with closing(sqlite3.connect(data_dir / "citeqa.sqlite3")) as conn, conn:
        conn.execute("CREATE VIRTUAL TABLE sentence_fts USING fts5(text)")
        conn.execute("DELETE FROM meta WHERE key = 'lexical_epoch'")
    with closing(EmbeddedStore(data_dir, DIMENSION)) as store:
        assert results(store) == before
        with closing(sqlite3.connect(data_dir / "citeqa.sqlite3")) as conn:
            assert conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'sentence_fts'").fetchone() is None
