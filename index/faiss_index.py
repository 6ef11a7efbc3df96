"""The dense half of the embedded store: a FAISS inner-product index keyed by sentence row id.

FAISS here is a cache of the vectors SQLite holds: it can always be rebuilt from the
database, so it is saved atomically (write, fsync, rename) now and then rather than on
every write, and a missing or unreadable file is rebuilt on open.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Sequence

import faiss
import numpy as np

log = logging.getLogger(__name__)


class VectorIndex:
    def __init__(self, dimension: int):
        self.dimension = dimension
        self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))
        # FAISS is not safe for a search during an add or remove; all access goes through this.
        self._lock = threading.Lock()

    @classmethod
    def load(cls, path: Path, dimension: int) -> "VectorIndex":
        """Read ``path``; an absent, corrupt or mismatched file gives an empty index
        (the caller then fills it from the database)."""
        remove_stale_temporaries(path)
        index = cls(dimension)
        if not path.exists():
            return index
        try:
            loaded = faiss.read_index(str(path))
            if loaded.d != dimension or not isinstance(loaded, faiss.IndexIDMap2):
                raise ValueError(f"index has dimension {loaded.d}, expected {dimension}")
            index._index = loaded
        except Exception as exc:  # a torn or foreign file must never stop the service
            log.warning("vector index %s unreadable (%s); rebuilding from the database", path, exc)
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

    def ids(self) -> np.ndarray:
        with self._lock:
            return faiss.vector_to_array(self._index.id_map).astype(np.int64)

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids) == 0:
            return
        with self._lock:
            self._index.add_with_ids(
                np.ascontiguousarray(vectors, dtype=np.float32),
                np.ascontiguousarray(ids, dtype=np.int64),
            )

    def remove(self, ids: np.ndarray) -> None:
        if len(ids) == 0:
            return
        with self._lock:
            self._index.remove_ids(np.ascontiguousarray(ids, dtype=np.int64))

    def reconstruct(self, ids: Sequence[int]) -> np.ndarray | None:
        """The stored vectors of ``ids``, or None if any is not in the index."""
        with self._lock:
            try:
                return np.stack([self._index.reconstruct(int(i)) for i in ids])
            except RuntimeError:  # an id FAISS does not hold
                return None

    def search(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        with self._lock:
            if self._index.ntotal == 0 or k <= 0:
                return []
            scores, ids = self._index.search(
                np.ascontiguousarray(vector.reshape(1, -1), dtype=np.float32),
                min(k, int(self._index.ntotal)),
            )
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]


def remove_stale_temporaries(path: Path) -> int:
    """Delete half-written saves (``<name>.<pid>.<thread>.tmp``) left by a process killed
    while saving: each is as large as the index. A save by a live process is left alone."""
    removed = 0
    for tmp in path.parent.glob(f"{path.name}.*.*.tmp"):
        try:
            pid = int(tmp.name[len(path.name) + 1:].split(".")[0])
        except ValueError:
            continue
        if pid != os.getpid() and _alive(pid):
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
