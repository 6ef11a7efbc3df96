"""The probe of ``citeqa bench-scale``: a fresh process opens the store, as a restarted server
would, and times dense, lexical and hybrid queries, over the whole store and again inside
a filter admitting 1% of the documents (bench/scale_data.py's FILTER); it reports the ids
found (for recall) and the memory the open store holds."""

from __future__ import annotations

import json
import multiprocessing
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from citeqa.bench.percentiles import percentile
from citeqa.bench.scale_data import FILTER
from citeqa.index.scope import DEFAULT_SCOPE, Scope, scope_from_request
from citeqa.index.types import Store

CANDIDATES = 50  # the retriever asks each index for this many


def _rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def latency_ms(seconds: Sequence[float]) -> dict[str, float | None]:
    """p50 and p95 in ms of query times given in seconds. p95 is the value at the nearest
    rank, as bench-scale has always reported it (docs/SCALING.md)."""
    p50, p95 = percentile(seconds, 50), percentile(seconds, 95, method="nearest")
    return {"p50_ms": None if p50 is None else 1000 * p50, "p95_ms": None if p95 is None else 1000 * p95}


class _GivenVectors:
    """The probe's queries come embedded: the retriever must never need the model."""

    name, dimension = "none", 0

    def encode(self, texts: Sequence[str]) -> np.ndarray:  # pragma: no cover - a bug if reached
        raise RuntimeError("the scale bench passes every query vector")


def open_store(spec: dict[str, Any]) -> Store:
    """The store a Backend's ``open_spec()`` describes."""
    if spec["backend"] == "embedded":
        from citeqa.index.embedded_store import EmbeddedStore

        return EmbeddedStore(Path(spec["data_dir"]), spec["dimension"])
    from citeqa.index.postgres_store import PostgresStore

    return PostgresStore(spec["url"], spec["dimension"])


def probe(spec: dict[str, Any], queries_path: str, out: "multiprocessing.Queue[dict[str, Any]]") -> None:
    """Runs in a fresh process: open the store, time the queries, report ids and memory."""
    try:
        import faiss

        faiss.omp_set_num_threads(1)  # one query at a time, as a request runs it

        saved = np.load(queries_path)
        questions = json.loads(str(saved["questions"]))
        question_vectors, synthetic = saved["question_vectors"], saved["synthetic_vectors"]
        baseline = _rss_bytes()
        started = time.perf_counter()
        store = open_store(spec)
        store.dense_search(question_vectors[0], CANDIDATES)
        open_s = time.perf_counter() - started
        unfiltered = _timed_queries(store, DEFAULT_SCOPE, questions, question_vectors, synthetic)
        # The filter is measured after the unfiltered queries, so the open cost and first
        # touches of the index are not charged to it.
        filtered = _timed_queries(store, scope_from_request(None, metadata=FILTER), questions,
                                  question_vectors, synthetic)
        # Resident now, above what the process held before opening the store: the index
        # and caches a server keeps for as long as it runs (peak would count transients).
        resident = _rss_bytes() - baseline
        count = store.sentence_count()
        store.close()
        out.put({"open_s": open_s, "sentences": count, **unfiltered, "filtered": filtered,
                 "probe_memory_bytes": max(0, resident)})
    except BaseException as err:  # the parent reports it
        out.put({"error": f"{type(err).__name__}: {err}"})


def _timed_queries(store: Store, scope: Scope, questions: list[str], question_vectors: np.ndarray,
                   synthetic: np.ndarray) -> dict[str, Any]:
    """Dense search for every query, lexical and hybrid for every question, inside
    ``scope`` (hybrid through a ScopedView, as ``Services.answerer_for`` reads a store);
    p50/p95 of each and the dense top 10s."""
    from citeqa.index.retriever import HybridRetriever, RetrievalSettings, for_store
    from citeqa.index.scoped_view import ScopedView

    # Unfiltered: the store itself, as bench-scale has always measured it; with the
    # settings the service gives this store (parallel searches on PostgreSQL).
    retriever = HybridRetriever(ScopedView(store, scope) if scope.filtered else store, _GivenVectors(),
                                for_store(RetrievalSettings(), store))
    found: dict[str, list[list[str]]] = {"questions": [], "synthetic": []}
    timings: dict[str, list[float]] = {"dense": [], "lexical": [], "hybrid": []}
    for kind, vectors in (("questions", question_vectors), ("synthetic", synthetic)):
        for vector in vectors:
            t = time.perf_counter()
            hits = store.dense_search(vector, CANDIDATES, scope)
            timings["dense"].append(time.perf_counter() - t)
            found[kind].append([h.sentence.id for h in hits[:10]])
    for question, vector in zip(questions, question_vectors, strict=True):
        t = time.perf_counter()
        store.lexical_search(question, CANDIDATES, scope)
        timings["lexical"].append(time.perf_counter() - t)
        t = time.perf_counter()
        retriever.search(question, 10, vector=vector)
        timings["hybrid"].append(time.perf_counter() - t)
    return {"found": found, "latency": {name: latency_ms(v) for name, v in timings.items()}}


def run_probe(spec: dict[str, Any], queries_path: Path) -> dict[str, Any]:
    """``probe`` in a spawned process (nothing inherited: a cold start); its report."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=probe, args=(spec, str(queries_path), queue))
    process.start()
    result: dict[str, Any] = queue.get()
    process.join()
    if "error" in result:
        raise RuntimeError(f"probe failed: {result['error']}")
    return result
