"""Pruned top-k BM25 on PostgreSQL (index/postgres_lexical.py): the same answer as scoring
every match, with document frequencies kept by the writes themselves."""

from __future__ import annotations

import dataclasses
import functools
import random

import pytest

from citeqa.index.postgres_lexical import (
    TermDelta,
    first_prefix,
    needed_prefix,
    pair_queries,
    reaching_alone,
    unread_rows,
    upper_bound,
)
from citeqa.index.scope import scope_from_request
from tests.contracts.concurrency import run_at_once
from tests.contracts.samples import DIMENSION, build

# -- the arithmetic -----------------------------------------------------------------------


def test_first_prefix_keeps_the_rarest_words_within_the_budget():
    assert first_prefix([5, 10, 100, 5000], budget=200) == 3
    assert first_prefix([5000, 6000], budget=200) == 1  # the rarest word is always a seed
    assert first_prefix([1, 1, 1], budget=200) == 3
    assert first_prefix([], budget=200) == 0


def test_needed_prefix_leaves_out_only_words_that_cannot_reach_the_threshold():
    bounds = [5.0, 3.0, 2.0, 1.0]
    assert needed_prefix(bounds, None) == 4  # fewer than k found: every word is needed
    assert needed_prefix(bounds, 3.5) == 2  # rest 2 + 1 = 3 < 3.5
    assert needed_prefix(bounds, 3.0) == 3  # rest 3 is not below 3: a tie could enter
    assert needed_prefix(bounds, 100.0) == 0
    assert needed_prefix(bounds, 0.5) == 4


def test_pair_queries_ask_for_two_words_the_first_of_them_needed():
    queries = ["'nfc'", "'nfl'", "'super'", "'team'"]
    assert pair_queries(queries, 1, 3) == ["('nfl') & (('super') | ('team'))", "('super') & (('team'))"]
    assert pair_queries(queries, 1, 1) == []
    assert pair_queries(queries, 3, 4) == []  # the last word has no later word to pair with


def test_reaching_alone_counts_the_words_whose_bound_reaches_the_threshold():
    bounds = [9.0, 6.0, 4.0, 2.0]
    assert reaching_alone(bounds, 1, 5.0) == 1
    assert reaching_alone(bounds, 1, 4.0) == 2  # a tie could enter
    assert reaching_alone(bounds, 0, 10.0) == 0


def test_unread_rows_leaves_out_the_rows_of_words_read_before():
    queries = ["'nfc'", "'nfl'", "'super'", "'team'"]
    assert unread_rows(queries, 0, 2) == "('nfc') | ('nfl')"
    assert unread_rows(queries, 2, 3) == "(('super')) & !(('nfc') | ('nfl'))"
    assert unread_rows(queries, 1, 4) == "(('nfl') | ('super') | ('team')) & !(('nfc'))"


def test_upper_bound_is_the_score_at_length_zero():
    assert upper_bound(2.0, 1.2, 0.75) == pytest.approx(2.0 * 2.2 / 1.3)


def test_term_delta_cancels_and_sorts():
    delta = TermDelta()
    delta.add([("storm", 2), ("whale", 1)], +1, versions=False)
    delta.add([("storm", 2)], -1, versions=False)
    delta.add([("coast", 1)], +1, versions=True)
    assert delta.rows() == (["coast", "whale"], [0, 1], [1, 0])


# -- on PostgreSQL --------------------------------------------------------------------------

psycopg = pytest.importorskip("psycopg", reason="psycopg 3 is not installed: pip install 'psycopg[binary]'")
pytest.importorskip("pgvector.psycopg", reason="the pgvector adapter is not installed: pip install pgvector")

from citeqa.index import postgres_store  # noqa: E402
from citeqa.index.postgres_store import PostgresStore  # noqa: E402

# Words with very different frequencies (drawn Zipf-like), so the rare ones seed and the
# common ones can be ruled out.
WORDS = ("river bridge castle harbour winter summer village market church tower storm whale "
         "forest mountain valley garden library museum station railway engine factory school "
         "teacher student soldier captain king queen bishop merchant farmer sailor painter poet "
         "novel symphony cathedral monastery fortress canal island desert glacier volcano").split()


def _text(rng: random.Random, sentences: int) -> str:
    out = []
    for _ in range(sentences):
        n = rng.randint(4, 14)
        words = [WORDS[min(int(rng.paretovariate(0.9)) - 1, len(WORDS) - 1)] for _ in range(n)]
        out.append(" ".join(words).capitalize() + ".")
    return " ".join(out)


def _corpus(seed: int, documents: int, prefix: str = "d") -> list:
    rng = random.Random(seed)
    return [build(f"{prefix}{i}", _text(rng, rng.randint(2, 6)), title=rng.choice(WORDS).title(),
                  metadata={"shard": i % 7}) for i in range(documents)]


@functools.cache
def _texts(seed: int, documents: int) -> frozenset[str]:
    return frozenset(s.text for d in _corpus(seed, documents) for s in d.sentences)


def _stored_terms(url: str) -> dict[str, tuple[int, int]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return {lexeme: (s, v) for lexeme, s, v in conn.execute(
            "SELECT lexeme, sentences, versions FROM citeqa_terms WHERE sentences <> 0 OR versions <> 0")}


def _live_words_follow_versions(url: str) -> bool:
    """citeqa_live_words holds exactly the live versions, with their words and lengths."""
    with psycopg.connect(url, autocommit=True) as conn:
        kept = conn.execute("SELECT id, doc_id, length, words::text FROM citeqa_live_words ORDER BY id").fetchall()
        live = conn.execute("SELECT id, doc_id, char_length(title) + char_length(text), strip(tsv)::text "
                            "FROM citeqa_versions WHERE live ORDER BY id").fetchall()
    return kept == live


def _counted_terms(url: str) -> dict[str, tuple[int, int]]:
    """The frequencies counted afresh from the searchable rows."""
    with psycopg.connect(url, autocommit=True) as conn:
        return {lexeme: (int(s), int(v)) for lexeme, s, v in conn.execute(
            "SELECT lexeme, sum(s), sum(v) FROM ("
            " SELECT unnest(tsvector_to_array(tsv)) AS lexeme, 1 AS s, 0 AS v FROM citeqa_sentences WHERE active"
            " UNION ALL SELECT unnest(tsvector_to_array(tsv)), 0, 1 FROM citeqa_versions WHERE live) AS f "
            "GROUP BY lexeme")}


QUERIES = ["storm over the river", "Which glacier fed the canal near the monastery?", "river bridge",
           "volcano", "king queen bishop castle", "poet symphony novel painter", "e-mail the river",
           "the of and", "zzzunknown river",
           # Many common words: the best rows hold several, above what any one word alone gives.
           "river bridge castle harbour winter summer village market church tower",
           "Did the river, the bridge and the castle face the winter storm?"]


def _in_score_order(found: list[tuple[str, float]]) -> list[tuple[float, str]]:
    """Best first, equal scores (to 9 decimals: the reference sums the same IDFs in another
    order, so a tie may differ in its last bit) by key: the order both searches mean."""
    return sorted((-round(score, 9), key) for key, score in found)


def _same_ranking(pruned: list[tuple[str, float]], full: list[tuple[str, float]]) -> None:
    assert [score for _, score in pruned] == pytest.approx([score for _, score in full], rel=1e-9)
    mine, theirs = _in_score_order(pruned), _in_score_order(full)
    last = theirs[-1][0] if theirs else None  # a tie at the k-th score may keep either member
    assert [e for e in mine if e[0] != last] == [e for e in theirs if e[0] != last]


def _same_results(pruned, full) -> None:
    _same_ranking([(r.sentence.key, r.score) for r in pruned], [(r.sentence.key, r.score) for r in full])


def _same_documents(pruned, full) -> None:
    _same_ranking(list(pruned), list(full))


def _reference(monkeypatch, search, *args):
    """``search`` scoring every match with the plain join (_LexicalTable.search_sql)."""
    with monkeypatch.context() as m:
        m.setattr(postgres_store._LexicalTable, "seeded_sql",
                  lambda self, where, words, pairs=0: self.search_sql(where))
        return search(*args)


@pytest.fixture
def stores(database_url):
    """(pruned, full): one database, the first with the smallest seed budget (pruning at
    every chance), the second seeding with every word (see _reference)."""
    pruned = PostgresStore(database_url, DIMENSION)
    pruned.seed_budget_rows = 1
    full = PostgresStore(database_url, DIMENSION)
    full.seed_budget_rows = 10**12
    yield pruned, full
    pruned.close()
    full.close()


def test_pruned_search_equals_scoring_every_match(stores, monkeypatch):
    pruned, full = stores
    pruned.put_many([(d.doc, d.sentences, d.vectors) for d in _corpus(1, 300)])
    pruning: list[tuple[int, int]] = []  # (words needed, words) whenever a k-th score ruled some out
    original = postgres_store.needed_prefix
    monkeypatch.setattr(postgres_store, "needed_prefix",
                        lambda bounds, threshold: pruning.append((original(bounds, threshold), len(bounds)))
                        or original(bounds, threshold))
    paired: list[int] = []  # pair queries per search that read pairs instead of whole words
    original_pairs = postgres_store.pair_queries
    monkeypatch.setattr(postgres_store, "pair_queries",
                        lambda queries, start, stop: paired.append(len(original_pairs(queries, start, stop)))
                        or original_pairs(queries, start, stop))
    stepped: list[int] = []  # documents: the words whose rows an earlier pass had read
    original_unread = postgres_store.unread_rows
    monkeypatch.setattr(postgres_store, "unread_rows",
                        lambda queries, read, prefix: stepped.append(read) or original_unread(queries, read, prefix))
    for query in QUERIES:
        for k in (1, 5, 50):
            _same_results(pruned.lexical_search(query, k), _reference(monkeypatch, full.lexical_search, query, k))
            _same_documents(pruned.lexical_document_search(query, k),
                            _reference(monkeypatch, full.lexical_document_search, query, k))
    assert any(needed < words for needed, words in pruning)  # common words were left unread
    assert any(paired)  # and rows holding two of them read instead of every row of each
    assert any(stepped)  # document searches added words pass by pass, reading only new rows


def test_pruned_search_within_scopes_never_leaks_nor_starves(stores, monkeypatch):
    pruned, full = stores
    pruned.put_many([(d.doc, d.sentences, d.vectors) for d in _corpus(2, 200)])
    # Another collection: the same doc_ids, other texts; never seen from default.
    pruned.put_many([(dataclasses.replace(d.doc, collection="news"), d.sentences, d.vectors)
                     for d in _corpus(3, 60)])
    scopes = [scope_from_request(None, metadata={"shard": 3}), scope_from_request(None, doc_ids=["d5", "d9"]),
              scope_from_request(None, metadata={"shard": {"gte": 5}}), scope_from_request(None),
              scope_from_request("news"), scope_from_request("news", metadata={"shard": 1})]
    for scope in scopes:
        for query in QUERIES:
            got = pruned.lexical_search(query, 20, scope)
            _same_results(got, _reference(monkeypatch, full.lexical_search, query, 20, scope))
            shards = {r.sentence.doc_id: int(r.sentence.doc_id[1:]) % 7 for r in got}
            assert all(scope.admits(doc_id, {"shard": shard}) for doc_id, shard in shards.items())
            if scope.collection == "news":  # its sentences hold the news texts, not default's
                assert all(r.sentence.text in _texts(3, 60) for r in got)
            _same_documents(pruned.lexical_document_search(query, 20, scope),
                            _reference(monkeypatch, full.lexical_document_search, query, 20, scope))


def test_term_counts_follow_every_write(stores, database_url):
    pruned, _ = stores
    first = _corpus(5, 40)
    pruned.put_many([(d.doc, d.sentences, d.vectors) for d in first])
    assert _stored_terms(database_url) == _counted_terms(database_url)
    assert _live_words_follow_versions(database_url)
    second = _corpus(6, 25)  # new versions of d0..d24: replaced in one batch
    pruned.put_many([(d.doc, d.sentences, d.vectors) for d in second])
    assert _stored_terms(database_url) == _counted_terms(database_url)
    assert _live_words_follow_versions(database_url)
    pruned.make_current("d3", first[3].doc.version)  # back to an older version
    assert pruned.delete("d7") and not pruned.delete("d7")
    pruned.put(second[7].doc, second[7].sentences, second[7].vectors)  # revived
    assert _stored_terms(database_url) == _counted_terms(database_url)
    assert _live_words_follow_versions(database_url)
    pruned.create_collection("news")
    pruned.delete_collection("default")
    assert _stored_terms(database_url) == _counted_terms(database_url) == {}
    assert _live_words_follow_versions(database_url)


def test_term_counts_hold_under_concurrent_writers(database_url):
    """Several replicas writing the same documents at once: no deadlock, counts exact."""
    replicas = [PostgresStore(database_url, DIMENSION) for _ in range(4)]
    try:
        batches = [_corpus(10 + n, 30) for n in range(4)]  # the same doc_ids, other texts

        def write(n: int) -> None:
            store = replicas[n]
            for start in range(0, 30, 10):
                chunk = batches[n][start:start + 10] if n % 2 else batches[n][start:start + 10][::-1]
                store.put_many([(d.doc, d.sentences, d.vectors) for d in chunk])
                store.delete(f"d{start + n}")

        run_at_once([lambda n=n: write(n) for n in range(4)], timeout_s=120)
        assert _stored_terms(database_url) == _counted_terms(database_url)
        assert _live_words_follow_versions(database_url)
    finally:
        for store in replicas:
            store.close()


def test_a_database_from_before_term_counts_gets_them_on_open(database_url):
    store = PostgresStore(database_url, DIMENSION)
    store.put_many([(d.doc, d.sentences, d.vectors) for d in _corpus(7, 30)])
    before = store.lexical_search("castle river", 10)
    store.close()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DROP TABLE citeqa_terms")
    reopened = PostgresStore(database_url, DIMENSION)
    try:
        assert _stored_terms(database_url) == _counted_terms(database_url) != {}
        _same_results(reopened.lexical_search("castle river", 10), before)
    finally:
        reopened.close()


def test_a_database_from_before_live_words_gets_them_on_open(database_url):
    """A database as citeqa wrote it before the documents' narrow copy (citeqa_live_words)."""
    store = PostgresStore(database_url, DIMENSION)
    store.put_many([(d.doc, d.sentences, d.vectors) for d in _corpus(8, 30)])
    store.delete("d4")
    before = store.lexical_document_search("castle river harbour", 10)
    store.close()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DROP TABLE citeqa_live_words")
        conn.execute("DROP TRIGGER citeqa_versions_live_words ON citeqa_versions")
    reopened = PostgresStore(database_url, DIMENSION)
    try:
        assert _live_words_follow_versions(database_url)
        _same_documents(reopened.lexical_document_search("castle river harbour", 10), before)
        reopened.put_many([(d.doc, d.sentences, d.vectors) for d in _corpus(9, 5)])  # the trigger is back
        assert _live_words_follow_versions(database_url)
    finally:
        reopened.close()
