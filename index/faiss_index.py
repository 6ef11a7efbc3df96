"""The dense half of the embedded store: a FAISS inner-product index keyed by sentence row id.

FAISS here is a cache of the vectors SQLite holds: it can always be rebuilt from the
database, so it is saved atomically (write, fsync, rename) now and then rather than on
every write, and a missing or unreadable file is rebuilt on open.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import faiss
import numpy as np

log = logging.getLogger(__name__)


# The index type follows the size (measurements and the choice: docs/SCALING.md, "FAISS
# index type by size"). Exact flat search costs O(n) per query: ~0.25 ms at 10k vectors,
# tens of ms at 1M. Beyond the threshold an HNSW graph answers in well under a millisecond
# at recall@10 >= 0.95.
HNSW_THRESHOLD = 50_000
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 64
# HNSW cannot remove a node, so a removed vector becomes a tombstone: its label in the
# IndexIDMap2 becomes -1 (so tombstones persist in the FAISS file itself) and searches skip
# it through an IDSelector. Past this fraction of tombstones the graph is rebuilt.
COMPACT_FRACTION = 0.25
_TOMBSTONE = -1
_GATHER = 32_768  # vectors copied at a time by search_among (48 MB at 384 dimensions)
# A build adds its vectors this many at a time, so a background one can be stopped between
# two chunks (seconds at 1M) rather than left running inside FAISS when the process exits:
# a thread still in FAISS's OpenMP code at exit aborts it ("terminate called without an
# active exception"). Inserting into HNSW in chunks builds the same kind of graph.
_BUILD_CHUNK = 8_192


# A background rebuild replays the changes made meanwhile off the lock in up to this many
# rounds, until a round finds at most _REPLAY_UNDER_LOCK of them; the rest (a few, unless
# writes outpace the replay) is applied under the lock, then the indexes are swapped.
_REPLAY_ROUNDS = 8
_REPLAY_UNDER_LOCK = 2


class _Stopped(Exception):
    """A background build asked to stop (the index is closing)."""


@dataclass
class _Rebuild:
    """A rebuild running off the lock: the changes made meanwhile, replayed before the swap."""

    kind: str
    # (op, ids, vectors): "add" with its vectors, or "remove" with none (an empty array).
    changes: list[tuple[str, np.ndarray, np.ndarray]] = field(default_factory=list)


class VectorIndex:
    """Inner-product search over ``dimension``-d vectors keyed by int64 ids.

    Below ``hnsw_threshold`` live vectors: IndexIDMap2(IndexFlatIP), exact. From it on:
    IndexIDMap2(IndexHNSWFlat) with tombstones for removed ids (see above). The switch is
    made when an add or a load crosses the threshold; an HNSW index whose live count falls
    under half the threshold goes back to flat when it is compacted or loaded.

    With ``rebuild_in_background`` a switch or compaction builds the new index in a thread,
    from a snapshot, without the lock (~530 s at 1M vectors): searches and writes go on
    against the old index, the adds and removes made meanwhile are replayed on the new one,
    and the two are swapped under the lock. Memory holds both indexes while it runs.
    ``on_rebuilt`` is called (in the rebuild's thread, no lock held) once a background
    rebuild is swapped in: the owner saves it then, or the next process to load the old
    file would rebuild it all over again. ``stop_rebuild`` abandons one (on close).
    """

    def __init__(self, dimension: int, hnsw_threshold: int = HNSW_THRESHOLD, *,
                 ef_search: int = HNSW_EF_SEARCH, compact_fraction: float = COMPACT_FRACTION,
                 rebuild_in_background: bool = False, on_rebuilt: Callable[[], None] | None = None):
        self.dimension = dimension
        self.hnsw_threshold = hnsw_threshold
        self.ef_search = ef_search
        self.compact_fraction = compact_fraction
        self.rebuild_in_background = rebuild_in_background
        self.on_rebuilt = on_rebuilt
        self._rebuild: _Rebuild | None = None
        # The last rebuild thread started. It outlives ``_rebuild`` (cleared at the swap) by
        # the ``on_rebuilt`` call: a wait that read only ``_rebuild`` returned while the
        # rebuilt index was still being saved (a flaky test in CI, session 26).
        self._rebuild_thread: threading.Thread | None = None
        self._stop = threading.Event()  # set by stop_rebuild: a background build gives up
        self._index = self._build("flat", np.zeros(0, np.int64), np.zeros((0, dimension), np.float32))
        self._hnsw = False
        self._dead = 0  # tombstones (labels of -1) in an HNSW index
        # Ids tombstoned since the last load or rebuild: IndexIDMap2's rev_map (which
        # reconstruct reads) still maps them; a load rebuilds rev_map without them.
        self._removed: set[int] = set()
        self._tombstone = faiss.IDSelectorRange(_TOMBSTONE, _TOMBSTONE + 1)
        self._live = faiss.IDSelectorNot(self._tombstone)
        # FAISS is not safe for a search during an add or remove; all access goes through this.
        self._lock = threading.Lock()
        # (labels as of this index object and size, their argsort, the sorted labels): where
        # each id sits in the flat storage, for search_among; rebuilt after any change.
        self._positions: tuple[tuple[int, int], np.ndarray, np.ndarray] | None = None
        self._changes = 0  # bumped by every add and remove: labels may have moved

    @property
    def kind(self) -> str:
        """``"flat"`` or ``"hnsw"``."""
        return "hnsw" if self._hnsw else "flat"

    @classmethod
    def load(cls, path: Path, dimension: int, *, hnsw_threshold: int = HNSW_THRESHOLD,
             rebuild_in_background: bool = False, on_rebuilt: Callable[[], None] | None = None) -> "VectorIndex":
        """Read ``path``; an absent, corrupt or mismatched file gives an empty index
        (the caller then fills it from the database)."""
        remove_stale_temporaries(path)
        index = cls(dimension, hnsw_threshold, rebuild_in_background=rebuild_in_background, on_rebuilt=on_rebuilt)
        if not path.exists():
            return index
        try:
            loaded = faiss.read_index(str(path))
            if loaded.d != dimension or not isinstance(loaded, faiss.IndexIDMap2):
                raise ValueError(f"index has dimension {loaded.d}, expected {dimension}")
            inner = faiss.downcast_index(loaded.index)
            if (not isinstance(inner, (faiss.IndexFlatIP, faiss.IndexHNSWFlat))
                    or inner.metric_type != faiss.METRIC_INNER_PRODUCT):
                raise ValueError(f"unexpected index type {type(inner).__name__}")
            index._index = loaded
            index._hnsw = isinstance(inner, faiss.IndexHNSWFlat)
            if index._hnsw:
                index._dead = int(np.count_nonzero(faiss.vector_to_array(loaded.id_map) == _TOMBSTONE))
        except Exception as exc:  # a torn or foreign file must never stop the service
            log.warning("vector index %s unreadable (%s); rebuilding from the database", path, exc)
            return index
        with index._lock:
            index._retype()
        return index

    def save(self, path: Path) -> None:
        # A name of our own: another store on the same directory (say `citeqa ingest` beside
        # the server) may be saving at this moment, and a shared ".tmp" made one of the two
        # os.replace calls fail with FileNotFoundError after its write had committed.
        tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        with self._lock:
            faiss.write_index(self._index, str(tmp))
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    @property
    def rebuilding(self) -> bool:
        return self._rebuild is not None

    def wait_for_rebuild(self, timeout: float | None = None) -> bool:
        """Block until no background rebuild is running: each one swapped in and its
        ``on_rebuilt`` returned, including one a swap started in turn; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            thread = self._rebuild_thread
            if thread is None or thread is threading.current_thread():
                return True
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                return False
            if self._rebuild_thread is thread:
                return True

    def stop_rebuild(self) -> None:
        """Abandon a background rebuild (if any) and wait for its thread to end: the old
        index stays, and the next trigger (a later add, or the next load) starts again."""
        thread = self._rebuild_thread
        if thread is None or thread is threading.current_thread() or not thread.is_alive():
            return
        self._stop.set()
        try:
            self.wait_for_rebuild()
        finally:
            self._stop.clear()

    def ids(self) -> np.ndarray:
        with self._lock:
            labels = faiss.vector_to_array(self._index.id_map).astype(np.int64)
            return labels[labels != _TOMBSTONE] if self._hnsw else labels

    def __len__(self) -> int:
        return int(self._index.ntotal) - self._dead

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids) == 0:
            return
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        with self._lock:
            self._changes += 1
            self._index.add_with_ids(vectors, ids)
            if self._removed:
                self._removed.difference_update(ids.tolist())
            if self._rebuild is not None:
                self._rebuild.changes.append(("add", ids, vectors))
            elif not self._hnsw and len(self) >= self.hnsw_threshold:
                self._start_rebuild("hnsw")

    def remove(self, ids: np.ndarray) -> None:
        if len(ids) == 0:
            return
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        with self._lock:
            self._changes += 1
            if self._rebuild is not None:
                self._rebuild.changes.append(("remove", ids, np.zeros((0, self.dimension), np.float32)))
            if not self._hnsw:
                self._index.remove_ids(faiss.IDSelectorBatch(ids))
                return
            gone = _tombstone(self._index, ids)
            if not len(gone):
                return
            self._removed.update(gone.tolist())
            self._dead += len(gone)
            if self._dead > self.compact_fraction * self._index.ntotal:
                self._retype(compact=True)

    def reconstruct(self, ids: Sequence[int]) -> np.ndarray | None:
        """The stored vectors of ``ids``, or None if any is not in the index."""
        with self._lock:
            if self._hnsw and any(int(i) == _TOMBSTONE or int(i) in self._removed for i in ids):
                return None
            try:
                # One call (rev_map lookups in C++): a Python loop of reconstruct() cost
                # ~10 us an id, ~1 ms of every hybrid search (it scores ~70 candidates).
                return np.asarray(self._index.reconstruct_batch(np.asarray(ids, dtype=np.int64)))
            except RuntimeError:  # an id FAISS does not hold
                return None

    def search(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        with self._lock:
            live = len(self)
            if live == 0 or k <= 0:
                return []
            k = min(k, live)
            params = (
                # In faiss since 1.7.3, but missing from the stubs it ships.
                faiss.SearchParametersHNSW(sel=self._live, efSearch=max(self.ef_search, k))  # type: ignore[attr-defined]
                if self._hnsw else None
            )
            with _one_openmp_thread():
                scores, ids = self._index.search(
                    np.ascontiguousarray(vector.reshape(1, -1), dtype=np.float32), k, params=params,
                )
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def search_among(self, vector: np.ndarray, k: int, ids: np.ndarray) -> list[tuple[int, float]]:
        """Exact top ``k`` among ``ids`` (those the index holds), by brute force over their
        stored vectors: what a filtered search needs when the filter keeps few vectors,
        where a graph search would stop before meeting ``k`` of them. Costs O(len(ids))."""
        with self._lock:
            if k <= 0 or len(ids) == 0 or self._index.ntotal == 0:
                return []
            order, ordered = self._id_positions()
            wanted = np.unique(np.asarray(ids, dtype=np.int64))
            at = np.minimum(np.searchsorted(ordered, wanted), len(ordered) - 1)
            held = ordered[at] == wanted
            positions, wanted = order[at[held]], wanted[held]
            if not len(positions):
                return []
            flat = faiss.downcast_index(self._index.index)
            storage = faiss.downcast_index(flat.storage) if self._hnsw else flat  # type: ignore[attr-defined]
            n = int(storage.ntotal)
            # A view on FAISS's own vectors (valid while the lock is held: an add may move them).
            stored = faiss.rev_swig_ptr(storage.get_xb(), n * self.dimension).reshape(n, self.dimension)  # type: ignore[attr-defined]
            query = np.asarray(vector, dtype=np.float32).reshape(-1)
            # In chunks: gathering a wide scope's vectors at once would copy them all.
            scores = np.concatenate([stored[positions[at:at + _GATHER]] @ query
                                     for at in range(0, len(positions), _GATHER)])
        top = np.argsort(-scores, kind="stable")[:k] if len(scores) <= 4 * k else _top(scores, k)
        return [(int(wanted[i]), float(scores[i])) for i in top]

    def _id_positions(self) -> tuple[np.ndarray, np.ndarray]:
        """(argsort of the labels, the sorted labels); tombstones sort first, never match."""
        labels = faiss.rev_swig_ptr(self._index.id_map.data(), self._index.ntotal)
        stamp = (id(self._index), self._changes)
        if self._positions is None or self._positions[0] != stamp:
            order = np.argsort(labels, kind="stable")
            self._positions = (stamp, order, np.asarray(labels)[order])
        return self._positions[1], self._positions[2]

    # -- type switching (callers hold self._lock) -------------------------------------------

    def _retype(self, compact: bool = False) -> None:
        """Give the index the type its live size calls for; rebuild an HNSW index carrying
        too many tombstones (or any, with ``compact``)."""
        live = len(self)
        if not self._hnsw:
            if live >= self.hnsw_threshold:
                self._start_rebuild("hnsw")
        elif live < self.hnsw_threshold // 2:
            self._start_rebuild("flat")
        elif self._dead > (0 if compact else self.compact_fraction * self._index.ntotal):
            self._start_rebuild("hnsw")

    def _start_rebuild(self, kind: str) -> None:
        """Rebuild as ``kind`` from the live contents: here, or in a thread off the lock."""
        if self._rebuild is not None:
            return  # one at a time; the running one will be checked again when it swaps
        ids, vectors = self._live_contents()
        if not self.rebuild_in_background:
            self._replace(kind, self._build(kind, ids, vectors), len(ids))
            return
        rebuild = self._rebuild = _Rebuild(kind)
        thread = self._rebuild_thread = threading.Thread(
            target=self._build_and_swap, args=(rebuild, ids, vectors), name=f"faiss-rebuild-{kind}", daemon=True)
        thread.start()

    def _build_and_swap(self, rebuild: _Rebuild, ids: np.ndarray, vectors: np.ndarray) -> None:
        started = time.perf_counter()
        try:
            index = self._build(rebuild.kind, ids, vectors)
        except Exception as exc:  # the old index stays in service; the next trigger tries again
            if isinstance(exc, _Stopped):
                log.info("background rebuild of the vector index stopped")
            else:
                log.exception("background rebuild of the vector index failed")
            with self._lock:
                self._rebuild = None
            return
        # The changes made while it was built are replayed off the lock, in rounds (the new
        # index is this thread's alone until the swap): at 1M a build takes minutes, and
        # replaying all that ingest came in meanwhile under the lock stopped every search
        # and write for minutes too. Only the last, short round holds the lock.
        removed: set[int] = set()
        for _ in range(_REPLAY_ROUNDS):
            with self._lock:
                pending, rebuild.changes = rebuild.changes, []
            if self._stop.is_set():
                log.info("background rebuild of the vector index stopped")
                with self._lock:
                    self._rebuild = None
                return
            self._replay(rebuild.kind, index, pending, removed)
            if len(pending) <= _REPLAY_UNDER_LOCK:
                break
        with self._lock:
            self._replay(rebuild.kind, index, rebuild.changes, removed)
            self._rebuild = None
            self._replace(rebuild.kind, index, len(ids), removed, time.perf_counter() - started)
            self._retype()  # the changes replayed may call for another rebuild
        if self.on_rebuilt is not None:
            try:
                self.on_rebuilt()
            except Exception:  # the index in memory is fine; the next save writes it
                log.exception("saving the rebuilt vector index failed")

    @staticmethod
    def _replay(kind: str, index: faiss.IndexIDMap2, changes: list[tuple[str, np.ndarray, np.ndarray]],
                removed: set[int]) -> None:
        """Apply ``changes`` (in the order they were made) to a rebuilt ``index``; ``removed``
        collects the ids tombstoned (HNSW) and not added back since."""
        for op, changed, added in changes:
            if op == "add":
                index.add_with_ids(added, changed)
                removed.difference_update(changed.tolist())
            elif kind == "flat":
                index.remove_ids(faiss.IDSelectorBatch(changed))
            else:
                removed.update(_tombstone(index, changed).tolist())

    def _live_contents(self) -> tuple[np.ndarray, np.ndarray]:
        n = int(self._index.ntotal)
        labels = faiss.vector_to_array(self._index.id_map).astype(np.int64)
        vectors = self._index.index.reconstruct_n(0, n) if n else np.zeros((0, self.dimension), np.float32)
        keep = labels != _TOMBSTONE if self._hnsw else slice(None)
        return labels[keep], vectors[keep]

    def _replace(self, kind: str, index: faiss.IndexIDMap2, built_from: int, removed: set[int] | None = None,
                 seconds: float | None = None) -> None:
        self._index = index
        self._changes += 1
        self._hnsw = kind == "hnsw"
        self._removed = removed or set()
        labels = faiss.vector_to_array(index.id_map) if self._hnsw else np.zeros(0, np.int64)
        self._dead = int(np.count_nonzero(labels == _TOMBSTONE))
        log.info("vector index rebuilt as %s from %d vectors%s", kind, built_from,
                 f" in {seconds:.1f}s off the lock" if seconds is not None else "")

    def _build(self, kind: str, ids: np.ndarray, vectors: np.ndarray) -> faiss.IndexIDMap2:
        if kind == "flat":
            index = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dimension))
        else:
            hnsw = faiss.IndexHNSWFlat(self.dimension, HNSW_M, faiss.METRIC_INNER_PRODUCT)
            hnsw.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
            hnsw.hnsw.efSearch = self.ef_search
            index = faiss.IndexIDMap2(hnsw)
        for at in range(0, len(ids), _BUILD_CHUNK):
            if self._stop.is_set() and threading.current_thread().name.startswith("faiss-rebuild"):
                raise _Stopped()
            index.add_with_ids(np.ascontiguousarray(vectors[at:at + _BUILD_CHUNK], dtype=np.float32),
                               np.ascontiguousarray(ids[at:at + _BUILD_CHUNK], dtype=np.int64))
        return index


@contextmanager
def _one_openmp_thread() -> Iterator[None]:
    """Run FAISS on this thread alone for the block. A search is one query, which an OpenMP
    team of two cannot share out, yet its threads spin waiting for work: a flat search of
    10,000 vectors cost 6.1 ms of CPU with two threads vs 0.43 ms with one (100,000: 38 vs
    5.9 ms; session 27, 2 cores, load 1.9), and a busy server ran out of CPU before its
    cores did. OpenMP keeps the count per calling thread: the one before is restored, so an
    add or a rebuild made later on the same thread still gets every core."""
    before = faiss.omp_get_max_threads()
    if before == 1:
        yield
        return
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    """Indexes of the ``k`` highest scores, best first."""
    part = np.argpartition(-scores, k - 1)[:k]
    return part[np.argsort(-scores[part], kind="stable")]


def _tombstone(index: faiss.IndexIDMap2, ids: np.ndarray) -> np.ndarray:
    """Mark ``ids`` removed in an IndexIDMap2 over HNSW (label -1); returns those found."""
    # A view on the id_map (valid until the next add).
    labels = faiss.rev_swig_ptr(index.id_map.data(), index.ntotal)
    hit = np.isin(labels, ids[ids != _TOMBSTONE])
    gone = labels[hit].copy()
    labels[hit] = _TOMBSTONE
    return gone


def remove_stale_temporaries(path: Path) -> int:
    """Delete half-written saves (``<name>.<pid>.<thread>.tmp``) left by a process killed
    while saving: each is as large as the index. A save by a live process (or by a live
    thread of this one) is left alone."""
    removed = 0
    # This process's own saves: those of its live threads are in progress (two stores of one
    # process may open the same directory at once); any other is a leftover of a failed save.
    saving = {thread.ident for thread in threading.enumerate()}
    for tmp in path.parent.glob(f"{path.name}.*.*.tmp"):
        try:
            pid, thread = (int(part) for part in tmp.name[len(path.name) + 1:].split(".")[:2])
        except ValueError:
            continue
        if (pid != os.getpid() and _alive(pid)) or (pid == os.getpid() and thread in saving):
            continue
        try:
            tmp.unlink()
            removed += 1
        except FileNotFoundError:
            pass
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
