"""``citeqa bench``: how fast ingest, retrieval and answers are, and what they cost.

One run measures, on an evaluation corpus (SQuAD dev by default):

- ingest rate (sentences/s) into a fresh data directory, beside the raw encode rate of the
  same model on the same sentences, so the ratio shows what splitting and storing add;
- the query cost floor (one question embedded + the dense and lexical index searches),
  to which ``/v1/ask`` latency is compared;
- ``/v1/ask`` and ``/v1/search`` p50/p95 in process and over HTTP (a real ``citeqa serve``);
- HTTP throughput of ``/v1/search`` and ``/v1/ask`` with 1, 4 and 16 concurrent clients,
  and the 16-vs-1 ratio of each (the levels of both routes are interleaved, so one ratio's
  two figures are close in time on a machine whose load drifts), against a server of
  ``--workers`` processes (the clients connect once every worker has answered);
- peak RSS of the server and of the bench, and index bytes per sentence.

With ``--url`` the in-process parts are skipped: the corpus goes through
``POST /v1/documents`` and the HTTP parts run against that server. Machines here have two
shared cores whose load drifts within minutes, so figures are medians and ratios, and what
a ratio compares is measured interleaved (each ingest batch beside a raw encode of its own
sentences; per question, floor, ask and search in rotating order). ``machine.loadavg_*``
and ``machine.thread_env`` say how busy the machine was and how OpenMP was set.
"""

from __future__ import annotations

import gc
import json
import os
import re
import resource
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Callable, Iterator, Optional, Sequence
from urllib.parse import urlparse

import httpx
import typer
from rich.console import Console

from citeqa.api.settings import Settings
from citeqa.bench.environment import machine, versions
from citeqa.bench.errors import BenchError
from citeqa.bench.footprint import index_size, open_data_dir, peak_rss_mb
from citeqa.bench.ingest_rate import (
    INGEST_BATCH,
    http_ingest,
    ingest_and_encode,
    ingest_in_process,
    ingest_inline_in_process,
)
from citeqa.bench.inputs import DEFAULT_CORPUS, Questions, load_inputs
from citeqa.bench.latency import http_latency, in_process_latency
from citeqa.bench.percentiles import percentiles
from citeqa.bench.proc_stats import listening_pid
from citeqa.bench.processes import running_server
from citeqa.bench.service_table import print_results
from citeqa.bench.throughput import scaling, throughput
from citeqa.bench.timing import ratio, timed_ms
from citeqa.index.ingest import DocumentInput
from citeqa.index.types import Embedder

CONCURRENCY = (1, 4, 16)
HELP = "Measure ingest rate, latency, throughput, memory and index size."

Log = Callable[[str], None]

app = typer.Typer(add_completion=False)


@app.command("bench", help=HELP)
def bench_command(
    url: Annotated[Optional[str], typer.Option(
        "--url", help="Bench a running server instead (skips the in-process parts).")] = None,
    corpus: Annotated[Path, typer.Option(
        "--corpus", help="Documents to ingest (JSONL of {doc_id,title,text}, files or a folder).")] = DEFAULT_CORPUS,
    repeats: Annotated[int, typer.Option(
        "--repeats", min=1, help="Raw encodes of each ingest batch (the median of each is used).")] = 1,
    out: Annotated[Path, typer.Option("--out", help="Where to write the JSON results.")] = Path("bench.json"),
    questions: Annotated[Optional[Path], typer.Option(
        "--questions", help="Questions JSONL ({question, ...}); default: squad_dev.jsonl beside the corpus.")] = None,
    duration: Annotated[float, typer.Option(
        "--duration", min=0.1, help="Seconds per throughput level (1, 4, 16 clients; /v1/search and /v1/ask).")] = 10.0,
    queries: Annotated[int, typer.Option("--queries", min=1, help="Questions timed for each latency figure.")] = 200,
    workers: Annotated[int, typer.Option("--workers", min=1, max=64, help=(
        "Processes of the `citeqa serve` the HTTP parts run against (its --workers); with --url, how many the "
        "server runs (the bench waits until each has answered)."))] = 1,
) -> None:
    """Measure ingest, query latency, throughput, memory and index size; print a table and write JSON."""
    console = Console()
    if not out.parent.is_dir():
        console.print(f"[red]bench:[/red] cannot write {out}: {out.parent} is not a directory")
        raise typer.Exit(2)
    try:
        results = run_bench(corpus, questions, url=url, repeats=repeats, duration=duration, n_queries=queries,
                            workers=workers, log=lambda message: console.print(f"[dim]{message}[/dim]"))
    except BenchError as exc:
        console.print(f"[red]bench:[/red] {exc}")
        raise typer.Exit(2) from None
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print_results(results, console)
    served = f"{url} ({workers} worker(s))" if url else f"citeqa serve --workers {workers}"
    console.print(f"HTTP figures measured against {served}")
    console.print(f"results written to {out}")


def run_bench(
    corpus: Path = DEFAULT_CORPUS,
    questions: Path | None = None,
    *,
    url: str | None = None,
    repeats: int = 1,
    duration: float = 10.0,
    n_queries: int = 200,
    warmup: int = 10,
    concurrency: Sequence[int] = CONCURRENCY,
    workers: int = 1,
    embedder: Embedder | None = None,
    work_dir: Path | None = None,
    log: Log = lambda message: None,
) -> dict[str, Any]:
    """Run every part of the bench and return the flat results (what ``--out`` holds).
    ``embedder`` shares an already loaded model; ``work_dir`` keeps the data directory
    and server log (default: a temporary directory, removed afterwards)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # we fork `citeqa serve` after encoding
    items, asked = load_inputs(Path(corpus), Path(questions) if questions else None)
    plan = _Plan(asked, repeats, duration, n_queries, warmup, tuple(concurrency), workers, log)
    results: dict[str, Any] = {
        "mode": "url" if url else "in_process", "url": url, "corpus": str(corpus), "documents": len(items),
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(), "versions": versions(), "unavailable": {},
    }
    started = time.perf_counter()
    if url:
        _bench_url(results, url, items, plan, embedder)
    else:
        with _work_dir(work_dir) as root:
            _bench_local(results, root, items, plan, embedder)
    results["questions_file"] = str(asked.path)
    results["bench_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    results["elapsed_s"] = round(time.perf_counter() - started, 1)
    results["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    return results


@dataclass(frozen=True)
class _Plan:
    """What to measure and how much of it: the same for both modes."""

    asked: Questions
    repeats: int
    duration: float
    n_queries: int
    warmup: int
    concurrency: tuple[int, ...]
    workers: int
    log: Log

    def config(self, settings: Settings | None) -> dict[str, Any]:
        config: dict[str, Any] = {
            "repeats": self.repeats, "duration_s": self.duration, "latency_questions": self.n_queries,
            "warmup_questions": self.warmup, "questions_available": len(self.asked.texts),
            "ingest_batch_documents": INGEST_BATCH, "concurrency": list(self.concurrency),
            "workers": self.workers,
        }
        if settings is not None:
            config["settings"] = settings.model_dump(mode="json")
        return config


# -- the two modes ---------------------------------------------------------------------------


def _bench_local(results: dict[str, Any], root: Path, items: list[DocumentInput], plan: _Plan,
                 embedder: Embedder | None) -> None:
    from citeqa.api.services import Services

    data_dir = root / "data"
    settings = Settings(data_dir=data_dir, seeds_dir=None)
    results["config"] = plan.config(settings)
    plan.log("loading the model")
    services = Services.open(settings, embedder)
    try:
        plan.log(f"ingesting {len(items)} documents in batches of {INGEST_BATCH}, each beside a raw encode of its "
                 "sentences")
        results.update(ingest_in_process(services, items, plan.repeats))
        plan.log(f"in-process latency over {plan.n_queries} questions")
        top_k = settings.default_top_k
        for q in plan.asked.warmup(plan.warmup):
            services.answerer.ask(q, top_k)
        results.update(in_process_latency(services, plan.asked.sample(plan.n_queries), top_k,
                                          max(settings.candidates, top_k)))
    finally:
        services.close()  # only one process may own the data directory: the server's turn
    embedder = services.embedder  # the model loaded once, for the second ingest
    del services
    gc.collect()  # closes the store's per-thread reader connections too (SQLite then checkpoints its WAL)
    results.update(index_size(data_dir, results["sentences"]))
    plan.log("ingesting them again into a fresh directory, each document analysed before it is acknowledged")
    inline = Settings(data_dir=root / "data-inline-analysis", seeds_dir=None)
    results.update(ingest_inline_in_process(inline, items, plan.repeats, embedder))
    gc.collect()

    plan.log(f"starting citeqa serve --workers {plan.workers}")
    with running_server(data_dir, root / "serve.log", workers=plan.workers) as (server_url, pid, ready_s):
        waited = time.perf_counter()
        if plan.workers > 1:
            wait_for_workers(server_url, plan.workers)  # else the first clients' connections all go to one
        results["server_ready_s"] = round(ready_s, 2)
        results["server_all_workers_ready_s"] = round(ready_s + time.perf_counter() - waited, 2)
        _bench_http(results, server_url, plan)
        results["server_peak_rss_mb"] = _tree_peak_rss_mb(pid)
    results["ask_http_vs_floor_ratio"] = ratio(results["ask_http_p50_ms"], results["query_floor_p50_ms"])


def _bench_url(results: dict[str, Any], url: str, items: list[DocumentInput], plan: _Plan,
               embedder: Embedder | None) -> None:
    url = url.rstrip("/")
    unavailable = results["unavailable"]
    try:
        ready = httpx.get(f"{url}/readyz", timeout=10)
    except httpx.HTTPError as exc:
        raise BenchError(f"no citeqa server at {url} ({exc})") from exc
    if ready.status_code != 200:
        raise BenchError(f"{url}/readyz answered {ready.status_code}: the server is not ready")
    results["config"] = {"url": url, "server_model": ready.json().get("model"), **plan.config(None)}
    if plan.workers > 1:
        wait_for_workers(url, plan.workers)
    if embedder is None:
        try:
            from citeqa.index.embedder import SentenceTransformerEmbedder

            plan.log("loading the model locally for the raw encode rate")
            local = Settings()
            embedder = SentenceTransformerEmbedder(local.model_path, local.embed_batch_size,
                                                   precision=local.embed_precision)
        except Exception as exc:  # the model may not be installed where the bench runs
            unavailable["raw_encode_sentences_per_s"] = f"the model could not be loaded locally: {exc}"
    beside = ", beside a raw encode of each batch" if embedder else ""
    plan.log(f"ingesting {len(items)} documents over HTTP{beside}")
    with httpx.Client(base_url=url, timeout=300) as client:
        results.update(ingest_and_encode(items, http_ingest(client), embedder, plan.repeats))
    if results["ingest_unchanged_documents"]:
        unavailable["ingest_sentences_per_s"] = (
            f"{results['ingest_unchanged_documents']} document(s) were already stored and not re-embedded; "
            "the rate counts only the sentences of new ones (bench a fresh server for a clean figure)")
    if embedder is not None:
        encode = embedder.encode
        results.update(percentiles([timed_ms(encode, [q]) for q in plan.asked.sample(plan.n_queries)],
                                   prefix="query_embed_", digits=2))
    embedder = None
    gc.collect()
    for key in ("index_search_p50_ms", "query_floor_p50_ms", "ask_inprocess_p50_ms", "ask_http_vs_floor_ratio"):
        unavailable.setdefault(key, "needs the store in process; not measured with --url")

    _bench_http(results, url, plan)
    results["sentences"] = httpx.get(f"{url}/readyz", timeout=10).json().get("sentences")
    _server_footprint(results, url)


def _server_footprint(results: dict[str, Any], url: str) -> None:
    """Peak RSS and index size of the server at ``url``, when it runs here and is ours to read."""
    unavailable = results["unavailable"]
    host, port = urlparse(url).hostname, urlparse(url).port or 80
    local_host = host in ("127.0.0.1", "localhost", "::1", "0.0.0.0")
    pid = listening_pid(port) if local_host else None
    if pid is None:
        reason = f"no readable process listens on port {port}" if local_host else "the server is not on this machine"
        results["server_peak_rss_mb"] = None
        unavailable["server_peak_rss_mb"] = reason
        unavailable["index_bytes_per_sentence"] = f"the server's data directory is unknown ({reason})"
        return
    results["server_pid"] = pid
    results["server_peak_rss_mb"] = peak_rss_mb(pid)
    data_dir = open_data_dir(pid)
    if data_dir is None:
        unavailable["index_bytes_per_sentence"] = f"process {pid} has no citeqa.sqlite3 open"
    else:
        results.update(index_size(data_dir, results["sentences"] or 0))


def _bench_http(results: dict[str, Any], url: str, plan: _Plan) -> None:
    plan.log(f"HTTP latency over {plan.n_queries} questions")
    results.update(http_latency(url, plan.asked, plan.n_queries, plan.warmup))
    ask: dict[str, Any] = {}
    search: dict[str, Any] = {}
    for clients in plan.concurrency:
        for route, levels in (("/v1/search", search), ("/v1/ask", ask)):
            plan.log(f"throughput: {route}, {clients} client(s) for {plan.duration:g} s (load {_load()})")
            levels[str(clients)] = {**throughput(url, plan.asked.texts, clients, plan.duration, route),
                                    "loadavg_1m": _load()}
    results["throughput"] = ask  # (/v1/ask, as before)
    results["search_throughput"] = search
    results["ask_throughput_scaling"] = scaling(ask)
    results["search_throughput_scaling"] = scaling(search)


_PROCESS_LINE = re.compile(r'^citeqa_process\{pid="(\d+)"\}', re.MULTILINE)


def process_of(client: httpx.Client) -> int:
    """The pid of the server process that answers on ``client``'s connection (its /metrics
    say: api/observability.py)."""
    r = client.get("/metrics")
    found = _PROCESS_LINE.search(r.text) if r.status_code == 200 else None
    if found is None:
        raise BenchError(f"{client.base_url}/metrics answered {r.status_code} without citeqa_process")
    return int(found.group(1))


def wait_for_workers(url: str, workers: int, timeout_s: float = 300.0) -> set[int]:
    """Wait until ``workers`` server processes have each answered a new connection (a worker
    accepts connections only once its model is loaded), so that clients that connect next
    are shared among all of them; returns their pids."""
    seen: set[int] = set()
    deadline = time.monotonic() + timeout_s
    while True:
        with httpx.Client(base_url=url, timeout=30) as client:  # a new connection each time
            seen.add(process_of(client))
        if len(seen) >= workers:
            return seen
        if time.monotonic() > deadline:
            raise BenchError(f"only {len(seen)} of {workers} workers answered within {timeout_s:g} s")
        time.sleep(0.05)


def _tree_peak_rss_mb(pid: int) -> float | None:
    """Peak RSS of ``pid`` plus that of its children (the workers of ``serve --workers``)."""
    total = peak_rss_mb(pid)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if parent == pid:
            child = peak_rss_mb(int(stat.parent.name))
            total = (total or 0.0) + (child or 0.0)
    return round(total, 1) if total is not None else None


def _load() -> float:
    return round(os.getloadavg()[0], 2)


@contextmanager
def _work_dir(work_dir: Path | None) -> Iterator[Path]:
    if work_dir is not None:
        work_dir.mkdir(parents=True, exist_ok=True)
        yield work_dir
        return
    with tempfile.TemporaryDirectory(prefix="citeqa-bench-") as tmp:
        yield Path(tmp)
