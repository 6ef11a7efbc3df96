"""HTTP throughput: ``clients`` threads asking ``/v1/ask`` (or searching ``/v1/search``) back
to back for a fixed time, and how much more ``clients`` get done than one client does."""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any, Mapping, Sequence

import httpx

from citeqa.bench.percentiles import percentiles
from citeqa.bench.timing import ms_since

# The routes measured, and the JSON body each sends for a question.
ROUTES: Mapping[str, str] = {"/v1/ask": "question", "/v1/search": "query"}


def throughput(url: str, questions: Sequence[str], clients: int, duration: float,
               route: str = "/v1/ask") -> dict[str, Any]:
    """Requests/s, errors and latency of ``clients`` concurrent clients, each with its own
    connection, all started together and stopped at one deadline, ``duration`` seconds after
    the last of them is ready (on a busy machine, opening 16 clients can take a second).
    ``route`` is a key of ROUTES."""
    field = ROUTES[route]
    picks = itertools.cycle(questions)
    pick_lock = threading.Lock()
    lock = threading.Lock()
    latencies: list[float] = []
    errors: list[str] = []
    window = [0.0, 0.0]  # start, deadline

    def open_window() -> None:  # run once, when every client is ready, before any is released
        window[0] = time.perf_counter()
        window[1] = window[0] + duration

    start = threading.Barrier(clients + 1, action=open_window)

    def work() -> None:
        with httpx.Client(base_url=url, timeout=300) as client:
            start.wait()
            while time.perf_counter() < window[1]:
                with pick_lock:
                    q = next(picks)
                t0 = time.perf_counter()
                try:
                    r = client.post(route, json={field: q})
                    error = None if r.status_code == 200 else f"HTTP {r.status_code}"
                except httpx.HTTPError as exc:
                    error = type(exc).__name__
                took = ms_since(t0)
                with lock:
                    if error:
                        errors.append(error)
                    else:
                        latencies.append(took)

    threads = [threading.Thread(target=work, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    start.wait()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - window[0]  # until the last request begun before the deadline ends
    return {
        "route": route, "clients": clients, "elapsed_s": round(elapsed, 2), "requests": len(latencies) + len(errors),
        "requests_per_s": round(len(latencies) / elapsed, 2), "errors": len(errors),
        "error_kinds": sorted(set(errors)),
        **percentiles(latencies, digits=2),
    }


def scaling(levels: Mapping[str, Mapping[str, Any]]) -> float | None:
    """Requests/s of the most clients measured over those of one client (same run): how
    much more work the server gets done when many ask at once. None without both levels."""
    counts = sorted(int(c) for c in levels)
    if len(counts) < 2 or counts[0] != 1:
        return None
    alone = levels["1"]["requests_per_s"]
    most = levels[str(counts[-1])]["requests_per_s"]
    return round(most / alone, 2) if alone else None
