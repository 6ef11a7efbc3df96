"""``citeqa stress soak``: many clients on a mix of everything for a set number of minutes
(bench/soak_clients.py), and what the server holds before, during and after the load:
resident memory, threads, open file descriptors and database connections
(bench/proc_stats.py). It passes when no request failed, no traceback was logged, and each
figure came back to its baseline after the load and did not grow while the load went on,
each within its stated tolerance (``TOLERANCES``).

1. a server (started here on a fresh data directory with the seed article, or ``--url``),
   warmed up with each operation once, then with every client for ``warm_up_s`` seconds,
   so that what loads on first use, or on first use by that many threads at once (the
   allocator's per-thread arenas, the store's pool), has loaded;
2. baseline: the server left idle, then sampled (the median of five readings);
3. the load, sampled every ``sample_every`` seconds;
4. after: the server left idle again, then sampled the same way as the baseline.

"Left idle" is ``SETTLE_S`` seconds and then one request: anyio retires a worker thread that
has been idle for 10 s, but only when another worker thread is asked for, so a server that
nobody calls keeps its idle threads; the store's pool closes connections idle for a second.
"Did not grow" compares the median of the last third of the load's samples with that of the
first third: a leak grows for as long as the load lasts, a warm-up plateau does not.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Callable, Sequence
from urllib.parse import urlparse

import httpx

from citeqa.bench.errors import BenchError
from citeqa.bench.percentiles import percentiles
from citeqa.bench.proc_stats import ProcessSample, listening_pid, sample
from citeqa.bench.processes import running_server
from citeqa.bench.soak_clients import DEFAULT_MIX, OPERATIONS, REQUEST_TIMEOUT_S, SoakClient, Tally, Workload
from citeqa.bench.stress_load import ingest_seed_article, is_loopback_url, parse_weights

Log = Callable[[str], None]
RESOURCES = ("rss_mb", "threads", "fds", "db_connections")
SETTLE_S = 12.0
READINGS = 5
WARM_UP_S = 15.0  # at most; a quarter of a shorter load


def tolerance(resource: str, baseline: float) -> float:
    """How far above its baseline a figure may end (and the last third of the load may be
    above the first third).

    - threads 4, connections 2: what a server keeps by design (an idle worker thread, the
      store's idle connections);
    - open files 16: 8 for those, plus the descriptors SQLite keeps on its database file for
      reuse after connections close (bench/proc_stats.py), as many as the store's pool ever
      had open at once (8 by default);
    - memory 64 MB or 15% of the baseline, whichever is more: freed memory goes back to the
      allocator, not always to the system, and what was ingested during the load takes room.
    """
    fixed = {"threads": 4.0, "fds": 16.0, "db_connections": 2.0}
    return fixed[resource] if resource in fixed else max(64.0, 0.15 * baseline)


def parse_soak_mix(text: str) -> dict[str, int]:
    return parse_weights(text, OPERATIONS)


def run_soak(url: str | None = None, minutes: float = 2.0, clients: int = 32, mix: dict[str, int] | None = None,
             generator: str | None = None, sample_every: float = 2.0, allow_remote: bool = False,
             api_key: str | None = None, seed: int = 0, settle_s: float = SETTLE_S,
             log: Log = lambda message: None) -> dict[str, Any]:
    """The soak, against ``url`` or a server started here on 127.0.0.1 (with ``url``, the
    server's resources are sampled only when it runs on this machine, found by its port)."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    mix = mix or parse_soak_mix(DEFAULT_MIX)
    if url and not (allow_remote or is_loopback_url(url)):
        raise BenchError(f"{url} is not a loopback address; this is a load generator (pass --allow-remote)")
    result: dict[str, Any] = {"minutes": minutes, "clients": clients, "mix": mix, "generator": generator,
                              "sample_every_s": sample_every, "settle_s": settle_s, "cpu_count": os.cpu_count(),
                              "loadavg_start": os.getloadavg()}
    tag = f"{os.getpid()}-{int(time.time())}"
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="citeqa-soak-") as tmp, ExitStack() as stack:
        log_path: Path | None = None
        pid: int | None
        try:
            if url is None:
                log_path = Path(tmp) / "serve.log"
                server = stack.enter_context(running_server(Path(tmp) / "data", log_path))
                url, pid = server.url, server.pid
                ingest_seed_article(url)
            else:
                url = url.rstrip("/")
                port = urlparse(url).port or (443 if url.startswith("https") else 80)
                pid = listening_pid(port) if is_loopback_url(url) else None
            result["url"], result["pid"] = url, pid
            work = Workload(url, mix, tag, generator, headers)
            warm_up_s = min(WARM_UP_S, minutes * 60 / 4)
            log(f"warming up: each operation once, then {clients} clients for {warm_up_s:g} s")
            warm_up = Tally()
            first = SoakClient(-1, work, warm_up, seed)
            with first.http:
                for op in (o for o in OPERATIONS if mix.get(o)):
                    first.once("ingest" if op == "delete" and not first.mine else op)
            _load(Workload(url, mix, f"{tag}-w", generator, headers), warm_up, clients, warm_up_s, None, sample_every,
                  seed + 1, t0)
            result["warm_up"] = {"seconds": warm_up_s, **_figures(warm_up, warm_up_s)}
            tally = Tally()
            log(f"baseline: idle for {settle_s:g} s, then {READINGS} readings")
            baseline = _settled(pid, url, headers, settle_s, t0)
            log(f"{clients} clients for {minutes:g} min")
            during, elapsed = _load(work, tally, clients, minutes * 60, pid, sample_every, seed, t0)
            log(f"after: idle for {settle_s:g} s, then {READINGS} readings")
            after = _settled(pid, url, headers, settle_s, t0)
        except httpx.HTTPError as exc:
            raise BenchError(f"cannot reach {url}: {exc}") from exc
        server_log = log_path.read_text(errors="replace") if log_path else ""
    result.update(_figures(tally, elapsed))
    result["tracebacks"] = server_log.count("Traceback")
    if result["tracebacks"]:
        start = server_log.index("Traceback")
        result["first_traceback"] = server_log[max(0, start - 300):start + 3000]
    result["loadavg_end"] = os.getloadavg()
    result["samples"] = {"baseline": [s.as_dict() for s in baseline], "during": [s.as_dict() for s in during],
                         "after": [s.as_dict() for s in after]}
    result["resources"] = judge(baseline, during, after) if pid else []
    result["resources_ok"] = all(row["back"] and row["flat"] for row in result["resources"])
    result["ok"] = (result["errors"] == 0 and result["warm_up"]["errors"] == 0 and result["tracebacks"] == 0
                    and result["resources_ok"] and bool(result["resources"]))
    return result


def _settled(pid: int | None, url: str, headers: dict[str, str], settle_s: float, t0: float) -> list[ProcessSample]:
    time.sleep(settle_s)
    # A request that runs in a worker thread: anyio retires the idle ones now.
    httpx.post(f"{url}/v1/search", json={"query": "troops"}, headers=headers, timeout=REQUEST_TIMEOUT_S)
    time.sleep(2.0)  # the store's pool closes what that request left idle
    readings = []
    for _ in range(READINGS if pid else 0):
        readings.append(sample(pid, time.monotonic() - t0))  # type: ignore[arg-type]
        time.sleep(0.5)
    return readings


def _load(work: Workload, tally: Tally, clients: int, seconds: float, pid: int | None, every: float, seed: int,
          t0: float) -> tuple[list[ProcessSample], float]:
    """The clients until the deadline, while a thread samples the server."""
    during: list[ProcessSample] = []
    done = threading.Event()

    def sampler() -> None:
        while pid and not done.is_set():
            try:
                during.append(sample(pid, time.monotonic() - t0))
            except ProcessLookupError:
                tally.errors["server process gone"] += 1
                return
            done.wait(every)

    started = time.monotonic()
    deadline = started + seconds
    threads = [threading.Thread(target=SoakClient(i, work, tally, seed).run_until, args=(deadline,), daemon=True)
               for i in range(clients)]
    watcher = threading.Thread(target=sampler, daemon=True)
    watcher.start()
    for t in threads:
        t.start()
    for t in threads:  # a request still running at the deadline finishes (or times out)
        t.join(max(0.0, deadline - time.monotonic()) + REQUEST_TIMEOUT_S + 5)
    done.set()
    watcher.join(every + 5)
    return during, time.monotonic() - started


def _figures(tally: Tally, elapsed: float) -> dict[str, Any]:
    operations: dict[str, dict[str, Any]] = {}
    for op, ms in tally.latencies.items():
        failed = sum(n for kind, n in tally.errors.items() if kind.startswith(op + " "))
        if ms or failed or tally.left[op]:
            operations[op] = {"requests": len(ms) + failed + tally.left[op], "ok": len(ms), "left": tally.left[op],
                              "errors": failed, **percentiles(ms, (50, 95), digits=1)}
    return {"elapsed_s": round(elapsed, 1), "operations": operations,
            "requests": sum(o["requests"] for o in operations.values()),
            "req_per_s": round(sum(o["requests"] for o in operations.values()) / max(elapsed, 1e-9), 1),
            "left": sum(tally.left.values()), "errors": sum(tally.errors.values()),
            "server_errors": tally.server_errors, "error_kinds": dict(tally.errors), "error_examples": tally.examples}


def judge(baseline: Sequence[ProcessSample], during: Sequence[ProcessSample],
          after: Sequence[ProcessSample]) -> list[dict[str, Any]]:
    """Per resource: baseline, the load's maximum, slope, first and last thirds, after, and
    whether it came back (``back``) and stayed flat (``flat``) within its tolerance."""
    rows = []
    third = max(1, len(during) // 3)
    for resource in RESOURCES:
        base = statistics.median(getattr(s, resource) for s in baseline)
        end = statistics.median(getattr(s, resource) for s in after)
        values = [float(getattr(s, resource)) for s in during] or [base]
        first, last = statistics.median(values[:third]), statistics.median(values[-third:])
        allowed = tolerance(resource, base)
        rows.append({"resource": resource, "baseline": base, "during_max": max(values),
                     "slope_per_min": round(slope([s.t for s in during], values) * 60, 2),
                     "first_third": first, "last_third": last, "after": end, "tolerance": round(allowed, 1),
                     "back": end - base <= allowed, "flat": last - first <= allowed})
    return rows


def slope(ts: Sequence[float], values: Sequence[float]) -> float:
    """Least-squares growth per second (0 with fewer than two samples)."""
    if len(ts) < 2 or len(set(ts)) < 2:
        return 0.0
    mt, mv = statistics.fmean(ts), statistics.fmean(values)
    return sum((t - mt) * (v - mv) for t, v in zip(ts, values, strict=True)) / sum((t - mt) ** 2 for t in ts)
