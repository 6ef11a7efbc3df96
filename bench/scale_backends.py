"""Where ``citeqa bench-scale`` grows its store: the embedded backend (SQLite + FAISS in a
directory) or PostgreSQL + pgvector (a server given by URL, or a throwaway one started here,
which is then restarted before each probe)."""

from __future__ import annotations

import importlib.util
import shutil
import sys
import time
from abc import ABC, abstractmethod
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterable, Optional

from citeqa.bench.environment import CHECKOUT
from citeqa.bench.errors import BenchError
from citeqa.index.types import Store
from citeqa.index.vector_checks import Batch

# A benchmark server set as one would run PostgreSQL for this (fsync stays on).
POSTGRES_SETTINGS = ["shared_buffers=2GB", "maintenance_work_mem=1GB", "max_wal_size=8GB",
                     "effective_cache_size=8GB"]
# The throwaway PostgreSQL is test infrastructure of the source checkout, not of the package.
LOCAL_POSTGRES = Path("tests/support/local_postgres.py")

Log = Callable[[str], None]


class Backend(ABC):
    """Where the store lives, how to open it in a fresh process, and what it costs on disk."""

    name: str
    # Sentences each stage stores with put_many, to measure its rate at the grown size; the
    # rest of the stage goes through bulk_grow. None: the whole stage through put_many.
    measured_tail: Optional[int] = None

    @abstractmethod
    def open(self) -> Store: ...

    def bulk_grow(self, store: Store, batches: Iterable[Batch]) -> dict[str, float]:
        """Store ``batches`` of new documents the fastest way that ends in the database
        put_many makes; what it took, in seconds by step."""
        started = time.perf_counter()
        for batch in batches:
            store.put_many(batch)
        return {"total_s": time.perf_counter() - started}

    @abstractmethod
    def open_spec(self) -> dict[str, Any]:
        """What a fresh process needs to open the store (see bench.scale_probe.open_store)."""

    @abstractmethod
    def disk_bytes(self) -> dict[str, int]: ...

    def before_probe(self) -> float:
        """Whatever a restart involves besides opening the store; returns its seconds."""
        return 0.0

    def server_memory(self) -> Optional[int]:
        return None

    def close(self) -> None:
        return None


class EmbeddedBackend(Backend):
    name = "embedded"

    def __init__(self, work_dir: Path, dimension: int):
        self.data_dir = work_dir / "embedded"
        shutil.rmtree(self.data_dir, ignore_errors=True)
        self.dimension = dimension

    def open(self) -> Store:
        from citeqa.index.embedded_store import EmbeddedStore

        return EmbeddedStore(self.data_dir, self.dimension)

    def open_spec(self) -> dict[str, Any]:
        return {"backend": "embedded", "data_dir": str(self.data_dir), "dimension": self.dimension}

    def disk_bytes(self) -> dict[str, int]:
        sizes = {p.name: p.stat().st_size for p in self.data_dir.iterdir() if p.is_file()}
        faiss = sizes.get("vectors.faiss", 0)
        # The Tantivy indexes (index/tantivy_lexical.py) live in a directory of their own.
        lexical = sum(p.stat().st_size for p in (self.data_dir / "lexical").rglob("*") if p.is_file())
        return {"total": sum(sizes.values()) + lexical, "vectors": faiss, "lexical": lexical,
                "database": sum(sizes.values()) - faiss}


class PostgresBackend(Backend):
    name = "postgres"
    # put_many at 1M stores ~290 sentences/s (HNSW inserts): 20k of them take ~70 s, the
    # other 980k would take an hour, so those are loaded in bulk (bench/scale_bulk.py).
    measured_tail = 20_000

    def __init__(self, dimension: int, url: Optional[str], log: Log):
        try:
            import psycopg
        except ImportError as exc:
            raise BenchError("--backend postgres needs psycopg 3: pip install -e '.[postgres]'") from exc
        self.dimension = dimension
        self.log = log
        self.server: Any = None  # tests/support/local_postgres.py's LocalPostgres, when we started one
        if url is None:
            local_postgres = load_local_postgres()
            try:
                self.server = local_postgres.LocalPostgres(settings=POSTGRES_SETTINGS).start()
            except RuntimeError as exc:  # not installed, or it did not start: the message says which
                raise BenchError(str(exc)) from exc
            admin = self.server.url
            log(f"started PostgreSQL on {admin} ({' '.join(POSTGRES_SETTINGS)})")
        else:
            admin = url.rsplit("/", 1)[0] if url.count("/") > 2 else url
        with psycopg.connect(f"{admin}/postgres", autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS citeqa_scale WITH (FORCE)")
            conn.execute("CREATE DATABASE citeqa_scale")
        self.url = f"{admin}/citeqa_scale"

    def open(self) -> Store:
        from citeqa.index.postgres_store import PostgresStore

        return PostgresStore(self.url, self.dimension)

    def bulk_grow(self, store: Store, batches: Iterable[Batch]) -> dict[str, float]:
        from citeqa.bench.scale_bulk import bulk_load

        done = bulk_load(self.url, self.dimension, batches, self.log)
        return {"total_s": done.total_s, "copy_s": done.copy_s, "terms_s": done.terms_s, "index_s": done.index_s,
                "analyze_s": done.analyze_s}

    def open_spec(self) -> dict[str, Any]:
        return {"backend": "postgres", "url": self.url, "dimension": self.dimension}

    def disk_bytes(self) -> dict[str, int]:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("CHECKPOINT")

            def scalar(sql: str) -> int:
                row = conn.execute(sql).fetchone()
                return int(row[0]) if row else 0

            total = scalar("SELECT pg_database_size(current_database())")
            hnsw = scalar("SELECT pg_relation_size('citeqa_sentences_hnsw')")
            wal = scalar("SELECT coalesce(sum(size), 0) FROM pg_ls_waldir()")
        return {"total": total, "vectors": hnsw, "database": total - hnsw, "wal": wal}

    def before_probe(self) -> float:
        if self.server is None:
            return 0.0
        started = time.perf_counter()
        self.server.restart()
        return time.perf_counter() - started

    def server_memory(self) -> Optional[int]:
        if self.server is None:
            return None
        total = 0
        for pid in self.server.server_pids():
            try:
                for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) * 1024
            except OSError:
                continue
        return total

    def close(self) -> None:
        if self.server is not None:
            self.server.cleanup()


def load_local_postgres() -> ModuleType:
    """tests/support/local_postgres.py of the source checkout (the current directory's, else
    the one this package runs from), loaded as a module of its own."""
    candidates = [Path.cwd() / LOCAL_POSTGRES, CHECKOUT / LOCAL_POSTGRES]
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        raise BenchError(
            f"--backend postgres without --postgres-url starts a throwaway PostgreSQL with {LOCAL_POSTGRES} of a "
            f"source checkout, and there is none here (looked in {Path.cwd()} and {CHECKOUT}): run it from the "
            "checkout, or pass --postgres-url of a PostgreSQL with pgvector")
    name = "citeqa_bench_local_postgres"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise BenchError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
