"""The embedded Store (SQLite + FAISS): the shared contract plus its own durability rules.

Vectors come from the deterministic fake embedder: what is tested here is where they
are kept, not what they mean.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from contextlib import closing

import faiss
import numpy as np
import pytest

from citeqa.index.embedded_store import EmbeddedStore
from tests.contracts.concurrency import run_at_once
from tests.contracts.samples import (
    DIMENSION,
    FAKE,
    OTHER_TEXT,
    STORM,
    V1_TEXT,
    V2_TEXT,
    WHALES,
    build,
    keys,
    put,
    texts,
    vector,
)
from tests.contracts.store import StoreContract
from tests.index.test_thread_connections import settled


class TestEmbeddedStore(StoreContract):
    @pytest.fixture
    def open_store(self, tmp_path):
        opened: list[EmbeddedStore] = []

        def open_store(dimension: int = DIMENSION) -> EmbeddedStore:
            opened.append(EmbeddedStore(tmp_path / "data", dimension))
            return opened[-1]

        yield open_store
        for store in opened:
            store.close()

    @pytest.fixture
    def stored_originals(self, tmp_path):
        def count() -> int:
            with closing(sqlite3.connect(tmp_path / "data" / "citeqa.sqlite3")) as conn:
                return int(conn.execute("SELECT count(*) FROM originals").fetchone()[0])

        return count


ARTICLES = {
    "lighthouse": V1_TEXT,
    "bakery": OTHER_TEXT,
    "volcano": "The volcano erupted at dawn. Ash fell on three villages. Scientists measured the plume.",
    "chess": "The grandmaster sacrificed her queen. The endgame lasted forty moves. She won on time.",
}
QUERIES = ["Which storms hit the coast?", "What fell on the villages?", "Who won the chess game?", "bread"]


def fill(store: EmbeddedStore) -> None:
    for doc_id, text in ARTICLES.items():
        put(store, doc_id, text)


def snapshot(store: EmbeddedStore) -> list[list[tuple[float, str, int]]]:
    """Every searchable sentence's cosine with each query. The fake embedder's vectors tie
    often, and FAISS orders ties by where it holds them, which a rebuild may change."""
    return [
        sorted((round(-r.score, 5), r.sentence.doc_id, r.sentence.index) for r in store.dense_search(vector(q), 100))
        for q in QUERIES
    ]


def active_ids(store: EmbeddedStore) -> np.ndarray:
    with closing(sqlite3.connect(store.db_path)) as conn:
        return np.array(sorted(r[0] for r in conn.execute("SELECT id FROM sentences WHERE active = 1")), dtype=np.int64)


@pytest.fixture
def data_dir(tmp_path):
    return tmp_path / "data"


@pytest.fixture
def filled(data_dir):
    store = EmbeddedStore(data_dir, DIMENSION)
    fill(store)
    yield store
    store.close()


@pytest.fixture
def two_stores(data_dir):
    """Two stores on one data directory, as a server and `citeqa ingest` beside it."""
    first, second = EmbeddedStore(data_dir, DIMENSION), EmbeddedStore(data_dir, DIMENSION)
    yield first, second
    second.close()
    first.close()


def test_reopen_after_close_finds_a_complete_faiss_file(data_dir):
    store = EmbeddedStore(data_dir, DIMENSION)
    fill(store)
    put(store, "lighthouse", V2_TEXT)
    store.delete("bakery")
    before = snapshot(store)
    store.close()

    again = EmbeddedStore(data_dir, DIMENSION)
    try:
        assert again.reconcile() == (0, 0)  # the saved FAISS file was complete
        assert snapshot(again) == before
        assert np.array_equal(np.sort(again.vectors.ids()), active_ids(again))
    finally:
        again.close()


@pytest.mark.parametrize("damage", ["deleted", "garbage", "truncated", "empty"])
def test_faiss_file_damage_is_rebuilt_on_open(data_dir, damage):
    store = EmbeddedStore(data_dir, DIMENSION)
    fill(store)
    before = snapshot(store)
    count = store.sentence_count()
    faiss_path = store.faiss_path
    store.close()
    assert faiss_path.exists()

    if damage == "deleted":
        faiss_path.unlink()
    elif damage == "garbage":
        faiss_path.write_bytes(np.random.default_rng(0).bytes(4096))
    elif damage == "truncated":
        faiss_path.write_bytes(faiss_path.read_bytes()[:100])
    else:
        faiss_path.write_bytes(b"")

    again = EmbeddedStore(data_dir, DIMENSION)
    try:
        assert len(again.vectors) == count
        assert snapshot(again) == before
        # The rebuilt index was written back: it is a valid FAISS file again.
        assert faiss.read_index(str(faiss_path)).ntotal == count
    finally:
        again.close()


def test_faiss_file_of_the_wrong_dimension_is_rebuilt(data_dir):
    store = EmbeddedStore(data_dir, DIMENSION)
    fill(store)
    before = snapshot(store)
    store.close()
    faiss.write_index(faiss.IndexIDMap2(faiss.IndexFlatIP(8)), str(data_dir / "vectors.faiss"))
    again = EmbeddedStore(data_dir, DIMENSION)
    try:
        assert snapshot(again) == before
    finally:
        again.close()


def test_reconcile_removes_sentences_deactivated_behind_its_back(filled):
    store = filled
    with closing(sqlite3.connect(store.db_path)) as conn, conn:
        gone = [
            r[0]
            for r in conn.execute(
                "SELECT s.id FROM sentences s JOIN versions v ON v.id = s.version_id WHERE v.doc_id = 'volcano'"
            )
        ]
        conn.execute(f"UPDATE sentences SET active = 0 WHERE id IN ({','.join('?' * len(gone))})", gone)
    assert len(gone) == 3
    assert set(gone) <= set(store.vectors.ids().tolist())
    assert store.reconcile() == (0, 3)
    assert not set(gone) & set(store.vectors.ids().tolist())
    assert np.array_equal(np.sort(store.vectors.ids()), active_ids(store))
    hits = store.dense_search(vector("What fell on the villages?"), 20)
    assert "volcano" not in {h.sentence.doc_id for h in hits}
    assert len(hits) == store.sentence_count()


def test_reconcile_removes_foreign_ids_and_restores_missing_ones(filled):
    store = filled
    query = vector("Which storms hit the coast?")
    expected = snapshot(store)
    # Orphans that outrank everything take top-k slots until reconciled away.
    store.vectors.add(np.array([10_001, 10_002, 10_003], dtype=np.int64), np.stack([query] * 3))
    assert len(store.dense_search(query, 5)) == 2
    missing = store.vectors.ids()[:2]
    store.vectors.remove(missing)
    assert store.reconcile() == (2, 3)
    assert np.array_equal(np.sort(store.vectors.ids()), active_ids(store))
    assert snapshot(store) == expected
    assert store.reconcile() == (0, 0)


def test_a_second_instance_on_the_same_directory_is_seen(two_stores):
    first, second = two_stores
    put(first, "bakery", OTHER_TEXT)
    whales = vector(WHALES)
    assert WHALES not in texts(first.dense_search(whales, 5))

    written = put(second, "lighthouse", V2_TEXT)
    found = first.dense_search(whales, 5)
    assert found[0].sentence.text == WHALES
    assert found[0].score == pytest.approx(1.0, abs=1e-4)
    assert first.document("lighthouse").version == written.doc.version
    assert texts(first.lexical_search("whales", 5)) == [WHALES]
    assert first.sentence_count() == 5

    # And the other way round, for a delete and a new version.
    assert second.delete("lighthouse") is True
    assert WHALES not in texts(first.dense_search(whales, 10))
    put(first, "lighthouse", V1_TEXT)
    assert second.dense_search(vector(STORM), 1)[0].sentence.text == STORM
    assert keys(first.dense_search(whales, 50)) == keys(second.dense_search(whales, 50))


def test_another_instance_writing_between_our_own_writes_is_not_missed(two_stores):
    """Our own commit must not mark another writer's earlier commit as already seen."""
    first, second = two_stores
    put(first, "bakery", OTHER_TEXT)
    put(second, "lighthouse", V2_TEXT)  # e.g. `citeqa ingest` beside the server
    put(first, "volcano", ARTICLES["volcano"])  # the server ingests too
    whales = vector(WHALES)
    assert texts(first.dense_search(whales, 1)) == [WHALES]
    assert np.array_equal(np.sort(first.vectors.ids()), active_ids(first))

    second.delete("lighthouse")
    first.delete("bakery")
    second.make_current("lighthouse", put(second, "lighthouse", V1_TEXT).doc.version)
    first.set_flag("x", "1")
    put(first, "chess", ARTICLES["chess"])
    assert texts(first.dense_search(vector(STORM), 1)) == [STORM]
    assert np.array_equal(np.sort(first.vectors.ids()), active_ids(first))


def database_files(store: EmbeddedStore) -> dict[str, int]:
    """This process's open file descriptors on the store's database, by file: each
    connection has the WAL open once; the main file's count also keeps a closed
    connection's descriptor while others hold locks on it (SQLite reuses it on the next
    open), so it stays at the most connections ever open at once."""
    names = {str(store.db_path): "main", f"{store.db_path}-wal": "wal", f"{store.db_path}-shm": "shm"}
    found = dict.fromkeys(names.values(), 0)
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed meanwhile
            continue
        if target in names:
            found[names[target]] += 1
    return found


def test_short_lived_reader_threads_leave_no_connections_behind(filled):
    """The API's worker threads come and go (issue 13: 4 -> 228 connections, 28 -> 476
    fds after eight rounds of 32 clients): what they read through is given back, at most
    max_open reader connections are ever open, and the count falls back after the burst."""
    store = filled
    own = 2  # the writer and the watch; readers come from the pool
    bound = own + store.pool.max_open
    peak: list[int] = []

    def read() -> None:
        store.dense_search(vector(QUERIES[0]), 5)
        store.lexical_search(QUERIES[1], 5)
        assert store.list_documents(10, 0).total == len(ARTICLES)
        peak.append(database_files(store)["wal"])

    for _ in range(8):
        run_at_once([read] * 32)  # 32 new threads each round, as anyio's pool replaces its workers
        assert database_files(store)["main"] <= bound
    assert max(peak) <= bound
    assert settled(store.pool, store.pool.max_idle) <= store.pool.max_idle
    files = database_files(store)
    assert files["wal"] == own + store.pool.open_count  # the connections open, as the OS sees them
    store.close()
    assert database_files(store) == {"main": 0, "wal": 0, "shm": 0}


def test_concurrent_readers_while_a_writer_puts(data_dir):
    store = EmbeddedStore(data_dir, DIMENSION)
    fill(store)
    query_texts = ["Which storms hit the coast?", "croissants and butter", "volcano ash", "grandmaster endgame"]
    query_vectors = FAKE.encode(query_texts)
    # Prepared up front so the writer thread spends its time in the store, not the model.
    batches = [
        build(f"news-{i:03d}", f"Bulletin {i} reports item {i}. Reporter {i} filed story number {i}.")
        for i in range(60)
    ]
    errors: list[BaseException] = []
    done = threading.Event()
    stats = {"searches": 0}

    def reader(n: int) -> None:
        try:
            while not done.is_set():
                dense = store.dense_search(query_vectors[n % len(query_vectors)], 10)
                ids = [r.sentence.id for r in dense]
                assert len(ids) == len(set(ids)), f"duplicate hits: {ids}"
                assert [r.score for r in dense] == sorted((r.score for r in dense), reverse=True)
                for r in dense:
                    assert r.sentence.text  # a whole, readable sentence
                lexical = store.lexical_search(query_texts[n % len(query_texts)], 10)
                assert len({r.sentence.id for r in lexical}) == len(lexical)
                stats["searches"] += 1
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    def writer() -> None:
        try:
            for i, item in enumerate(batches):
                store.put(item.doc, item.sentences, item.vectors)
                if i % 10 == 9:
                    store.delete(f"news-{i - 5:03d}")
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            done.set()

    threads = [threading.Thread(target=reader, args=(n,)) for n in range(3)] + [threading.Thread(target=writer)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not any(t.is_alive() for t in threads)
        assert not errors, errors[0]
        assert stats["searches"] > 0

        # Afterwards FAISS holds exactly the live sentences, each once.
        ids = store.vectors.ids()
        assert len(ids) == len(set(ids.tolist()))
        assert np.array_equal(np.sort(ids), active_ids(store))
        assert store.sentence_count() == 12 + (60 - 6) * 2
        bulletin = store.dense_search(vector("Bulletin 42 reports item 42."), 1)
        assert bulletin[0].sentence.doc_id == "news-042"
        assert store.document("news-044") is None
        assert "news-044" not in {r.sentence.doc_id for r in store.lexical_search("bulletin 44 reports item 44", 50)}
    finally:
        done.set()
        store.close()


def test_two_instances_writing_at_once_both_end_in_sync(two_stores):
    first, second = two_stores
    docs = {
        name: [build(f"{name}-{i:02d}", f"{name.title()} note {i} mentions item {i}.") for i in range(25)]
        for name in ("first", "second")
    }
    errors: list[BaseException] = []

    def write(store: EmbeddedStore, items) -> None:
        try:
            for item in items:
                store.put(item.doc, item.sentences, item.vectors)
                store.dense_search(item.vectors[0], 3)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [
        threading.Thread(target=write, args=(first, docs["first"])),
        threading.Thread(target=write, args=(second, docs["second"])),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors[0]
    probe = vector("note mentions item")
    for store in (first, second):
        assert len(store.dense_search(probe, 100)) == 50
        ids = store.vectors.ids()
        assert len(ids) == len(set(ids.tolist())) == 50
        assert np.array_equal(np.sort(ids), active_ids(store))


def test_half_written_faiss_saves_of_dead_processes_are_removed_on_open(tmp_path):
    import subprocess

    from citeqa.index.faiss_index import remove_stale_temporaries

    path = tmp_path / "vectors.faiss"
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / f"vectors.faiss.{dead.pid}.1.tmp"
    live = tmp_path / f"vectors.faiss.{os.getppid()}.1.tmp"  # a live process's save in progress
    stale.write_bytes(b"x" * 100)
    live.write_bytes(b"y")
    EmbeddedStore(tmp_path, DIMENSION).close()
    assert not stale.exists() and live.exists()
    assert remove_stale_temporaries(path) == 0


def test_a_save_in_progress_in_another_thread_of_this_process_is_left_alone(tmp_path):
    """Two stores of one process may open one directory at once: the first one's save (named
    by its thread) must survive the second one's clean-up; a leftover of this process whose
    thread is gone is removed."""
    import threading

    from citeqa.index.faiss_index import remove_stale_temporaries

    path = tmp_path / "vectors.faiss"
    started, release = threading.Event(), threading.Event()
    saver = threading.Thread(target=lambda: (started.set(), release.wait(10)))
    saver.start()
    started.wait(10)
    try:
        in_progress = tmp_path / f"vectors.faiss.{os.getpid()}.{saver.ident}.tmp"
        known = {t.ident for t in threading.enumerate()}
        gone_thread = next(n for n in range(1, 10**6) if n not in known)
        leftover = tmp_path / f"vectors.faiss.{os.getpid()}.{gone_thread}.tmp"
        in_progress.write_bytes(b"saving")
        leftover.write_bytes(b"x" * 100)
        assert remove_stale_temporaries(path) == 1
        assert in_progress.exists() and not leftover.exists()
    finally:
        release.set()
        saver.join()


def test_a_background_switch_to_hnsw_is_saved_when_it_ends(data_dir):
    """A restart after the switch loads the graph: it is not built again on every open."""
    store = EmbeddedStore(data_dir, DIMENSION)
    try:
        fill(store)
        store.vectors.hnsw_threshold = 4  # the switch, at a size a test can reach: the next write
        put(store, "storm", STORM)
        assert store.settle(60) and store.vectors.kind == "hnsw"
        # settle() waits for the save too (it returned before it once: flaky in session 26)
        loaded = faiss.read_index(str(store.faiss_path))  # owns the inner index: keep it alive
        assert isinstance(faiss.downcast_index(loaded.index), faiss.IndexHNSWFlat)
        assert loaded.ntotal == len(active_ids(store))
    finally:
        store.close()
