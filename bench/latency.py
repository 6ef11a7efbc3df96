"""Query latency: in process beside its floor (what any answer costs at least), and over
HTTP, with the server's own account of where the time went."""

from __future__ import annotations

import time
from typing import Any, Sequence

import httpx
import numpy as np

from citeqa.bench.inputs import Questions
from citeqa.bench.percentiles import percentiles
from citeqa.bench.timing import ms_since, ratio


def in_process_latency(services: Any, questions: Sequence[str], top_k: int, candidates: int) -> dict[str, Any]:
    """Per question, in rotating order: the floor (its embedding and the dense and BM25
    index searches, what any answer costs at least), an ask and a search, so that the
    three see the same machine load and their ratio means something. ``services`` is an
    api.services.Services."""
    store = services.store
    ms: dict[str, list[float]] = {k: [] for k in ("query_embed", "dense_search", "lexical_search", "index_search",
                                                  "query_floor", "ask_inprocess", "search_inprocess", "ratio")}
    statuses: dict[str, int] = {}

    def floor(q: str) -> None:
        t0 = time.perf_counter()
        vector = services.embedder.encode([q])[0]
        t1 = time.perf_counter()
        store.dense_search(vector, candidates)
        t2 = time.perf_counter()
        store.lexical_search(q, candidates)
        t3 = time.perf_counter()
        for key, took in (("query_embed", t1 - t0), ("dense_search", t2 - t1), ("lexical_search", t3 - t2),
                          ("index_search", t3 - t1), ("query_floor", t3 - t0)):
            ms[key].append(took * 1000)

    def ask(q: str) -> None:
        t0 = time.perf_counter()
        status = services.answerer.ask(q, top_k).status
        ms["ask_inprocess"].append(ms_since(t0))
        statuses[status] = statuses.get(status, 0) + 1

    def search(q: str) -> None:
        t0 = time.perf_counter()
        services.retriever.search(q, top_k)
        ms["search_inprocess"].append(ms_since(t0))

    steps = [floor, ask, search]
    for i, q in enumerate(questions):
        for step in steps[i % 3:] + steps[:i % 3]:
            step(q)
        ms["ratio"].append(ms["ask_inprocess"][-1] / ms["query_floor"][-1])
    results: dict[str, Any] = {}
    for key, values in ms.items():
        if key != "ratio":
            results |= percentiles(values, prefix=f"{key}_", digits=2)
    results["ask_inprocess_vs_floor_ratio"] = ratio(results["ask_inprocess_p50_ms"], results["query_floor_p50_ms"])
    results["ask_inprocess_vs_floor_ratio_paired_median"] = round(float(np.median(ms["ratio"])), 3)
    results["ask_inprocess_status_counts"] = statuses
    results["index_search_candidates"] = candidates
    return results


def http_latency(url: str, asked: Questions, n_queries: int, warmup: int) -> dict[str, Any]:
    """``/v1/ask`` and ``/v1/search`` p50/p95 over HTTP, one request at a time, and what
    HTTP, JSON and the event loop add to an ask (client time minus the server's own)."""
    results: dict[str, Any] = {}
    errors = 0
    server_ms: dict[str, list[float]] = {"overhead": []}
    with httpx.Client(base_url=url, timeout=300) as client:
        for q in asked.warmup(warmup):
            client.post("/v1/ask", json={"question": q})
        for route, field in (("ask", "question"), ("search", "query")):
            took = []
            for q in asked.sample(n_queries):
                t0 = time.perf_counter()
                r = client.post(f"/v1/{route}", json={field: q})
                took.append(ms_since(t0))
                if r.status_code != 200:
                    errors += 1
                elif route == "ask":
                    timings = r.json().get("timings_ms", {})
                    for step, ms in timings.items():
                        server_ms.setdefault(step, []).append(ms)
                    if "total" in timings:  # what HTTP, JSON and the event loop add to this request
                        server_ms["overhead"].append(took[-1] - timings["total"])
            results.update(percentiles(took, prefix=f"{route}_http_", digits=2))
    results["latency_http_errors"] = errors
    for step in ("embed", "retrieve", "total"):  # the server's own account of /v1/ask
        if server_ms.get(step):
            results[f"ask_server_{step}_p50_ms"] = round(float(np.median(server_ms[step])), 2)
    if server_ms["overhead"]:
        results["ask_http_overhead_p50_ms"] = round(float(np.median(server_ms["overhead"])), 2)
    return results
