"""``citeqa bench``: how fast ingest, retrieval and answers are, and what they cost.

One run measures, on an evaluation corpus (SQuAD dev by default):

- ingest rate (sentences/s) into a fresh data directory, beside the raw encode rate of the
  same model on the same sentences, so the ratio shows what splitting and storing add;
- the query cost floor (one question embedded + the dense and lexical index searches),
  to which ``/v1/ask`` latency is compared;
- ``/v1/ask`` and ``/v1/search`` p50/p95 in process and over HTTP (a real ``citeqa serve``);
- HTTP throughput with 1, 4 and 16 concurrent clients;
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
import itertools
import json
import os
import platform
import resource
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import closing, contextmanager
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence
from urllib.parse import urlparse

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from citeqa.api.settings import Settings
from citeqa.index.ingest import DocumentInput, InvalidDocument, read_inputs
from citeqa.index.sentences import split_sentences

DEFAULT_CORPUS = Path(__file__).resolve().parents[1].parent / "shared/eval/squad_dev.corpus.jsonl"
INDEX_FILES = ("citeqa.sqlite3", "citeqa.sqlite3-wal", "vectors.faiss")
INGEST_BATCH = 256  # documents per ingest_many call, as `citeqa ingest` does
CONCURRENCY = (1, 4, 16)
READY_TIMEOUT_S = 300.0

Log = Callable[[str], None]


class BenchError(RuntimeError):
    """The bench cannot run as asked; the message says why."""


# -- the entry points ------------------------------------------------------------------------


def bench_command(
    url: Optional[str] = typer.Option(None, "--url", help="Bench a running server instead (skips the in-process parts)."),
    corpus: Path = typer.Option(DEFAULT_CORPUS, "--corpus", help="Documents to ingest (JSONL of {doc_id,title,text}, files or a folder)."),
    repeats: int = typer.Option(1, "--repeats", min=1, help="Raw encodes of each ingest batch (the median of each is used)."),
    out: Path = typer.Option(Path("bench.json"), "--out", help="Where to write the JSON results."),
    questions: Optional[Path] = typer.Option(None, "--questions", help="Questions JSONL ({question, ...}); default: squad_dev.jsonl beside the corpus."),
    duration: float = typer.Option(10.0, "--duration", min=0.1, help="Seconds per throughput level (1, 4, 16 clients)."),
    queries: int = typer.Option(200, "--queries", min=1, help="Questions timed for each latency figure."),
) -> None:
    """Measure ingest, query latency, throughput, memory and index size; print a table and write JSON."""
    console = Console()
    if not out.parent.is_dir():
        console.print(f"[red]bench:[/red] cannot write {out}: {out.parent} is not a directory")
        raise typer.Exit(2)
    try:
        results = run_bench(corpus, questions, url=url, repeats=repeats, duration=duration, n_queries=queries,
                            log=lambda message: console.print(f"[dim]{message}[/dim]"))
    except BenchError as exc:
        console.print(f"[red]bench:[/red] {exc}")
        raise typer.Exit(2)
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print_results(results, console)
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
    embedder: Any = None,
    work_dir: Path | None = None,
    log: Log = lambda message: None,
) -> dict[str, Any]:
    """Run every part of the bench and return the flat results (what ``--out`` holds).
    ``embedder`` shares an already loaded model; ``work_dir`` keeps the data directory
    and server log (default: a temporary directory, removed afterwards)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # we fork `citeqa serve` after encoding
    items, asked = _load_inputs(Path(corpus), Path(questions) if questions else None)
    results: dict[str, Any] = {
        "mode": "url" if url else "in_process", "url": url, "corpus": str(corpus), "documents": len(items),
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": _machine(), "versions": _versions(), "unavailable": {},
    }
    started = time.perf_counter()
    if url:
        _bench_url(results, url, items, asked, repeats, duration, n_queries, warmup, concurrency, embedder, log)
    else:
        with _work_dir(work_dir) as root:
            _bench_local(results, root, items, asked, repeats, duration, n_queries, warmup, concurrency, embedder, log)
    results["questions_file"] = str(asked.path)
    results["bench_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    results["elapsed_s"] = round(time.perf_counter() - started, 1)
    results["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    return results


# -- the two modes ---------------------------------------------------------------------------


def _bench_local(results, root, items, asked, repeats, duration, n_queries, warmup, concurrency, embedder, log) -> None:
    from citeqa.api.services import Services

    data_dir = root / "data"
    settings = Settings(data_dir=data_dir, seeds_dir=None)
    results["config"] = _config(settings, repeats, duration, n_queries, warmup, asked, concurrency)
    log("loading the model")
    services = Services.open(settings, embedder)
    try:
        log(f"ingesting {len(items)} documents in batches of {INGEST_BATCH}, each beside a raw encode of its sentences")
        results.update(_ingest_and_encode(items, _in_process_ingest(services), services.embedder, repeats))
        log(f"in-process latency over {n_queries} questions")
        top_k = settings.default_top_k
        for q in asked.warmup(warmup):
            services.answerer.ask(q, top_k)
        results.update(_in_process_latency(services, asked.sample(n_queries), top_k, max(settings.candidates, top_k)))
    finally:
        services.close()  # only one process may own the data directory: the server's turn
    del services
    gc.collect()  # closes the store's per-thread reader connections too (SQLite then checkpoints its WAL)
    results.update(_index_size(data_dir, results["sentences"]))

    log("starting citeqa serve")
    with running_server(data_dir, root / "serve.log") as (server_url, pid, ready_s):
        results["server_ready_s"] = round(ready_s, 2)
        _bench_http(results, server_url, asked, n_queries, warmup, duration, concurrency, log)
        results["server_peak_rss_mb"] = _peak_rss_mb(pid)
    results["ask_http_vs_floor_ratio"] = _ratio(results["ask_http_p50_ms"], results["query_floor_p50_ms"])


def _bench_url(results, url, items, asked, repeats, duration, n_queries, warmup, concurrency, embedder, log) -> None:
    import httpx

    url = url.rstrip("/")
    unavailable = results["unavailable"]
    try:
        ready = httpx.get(f"{url}/readyz", timeout=10)
    except httpx.HTTPError as exc:
        raise BenchError(f"no citeqa server at {url} ({exc})") from exc
    if ready.status_code != 200:
        raise BenchError(f"{url}/readyz answered {ready.status_code}: the server is not ready")
    results["config"] = {"url": url, "server_model": ready.json().get("model"),
                         **_config(None, repeats, duration, n_queries, warmup, asked, concurrency)}
    if embedder is None:
        try:
            from citeqa.index.embedder import SentenceTransformerEmbedder

            log("loading the model locally for the raw encode rate")
            local = Settings()
            embedder = SentenceTransformerEmbedder(local.model_path, local.embed_batch_size)
        except Exception as exc:  # the model may not be installed where the bench runs
            unavailable["raw_encode_sentences_per_s"] = f"the model could not be loaded locally: {exc}"
    log(f"ingesting {len(items)} documents over HTTP" + (", beside a raw encode of each batch" if embedder else ""))
    with httpx.Client(base_url=url, timeout=300) as client:
        results.update(_ingest_and_encode(items, _http_ingest(client), embedder, repeats))
    if results["ingest_unchanged_documents"]:
        unavailable["ingest_sentences_per_s"] = (
            f"{results['ingest_unchanged_documents']} document(s) were already stored and not re-embedded; "
            "the rate counts only the sentences of new ones (bench a fresh server for a clean figure)")
    if embedder is not None:
        results.update(_percentiles("query_embed", [_timed_ms(embedder.encode, [q]) for q in asked.sample(n_queries)]))
    embedder = None
    gc.collect()
    for key in ("index_search_p50_ms", "query_floor_p50_ms", "ask_inprocess_p50_ms", "ask_http_vs_floor_ratio"):
        unavailable.setdefault(key, "needs the store in process; not measured with --url")

    _bench_http(results, url, asked, n_queries, warmup, duration, concurrency, log)
    results["sentences"] = _get_json(url, "/readyz").get("sentences")
    host, port = urlparse(url).hostname, urlparse(url).port or 80
    local_host = host in ("127.0.0.1", "localhost", "::1", "0.0.0.0")
    pid = _listening_pid(port) if local_host else None
    if pid is None:
        reason = f"no readable process listens on port {port}" if local_host else "the server is not on this machine"
        results["server_peak_rss_mb"] = None
        unavailable["server_peak_rss_mb"] = reason
        unavailable["index_bytes_per_sentence"] = f"the server's data directory is unknown ({reason})"
        return
    results["server_pid"] = pid
    results["server_peak_rss_mb"] = _peak_rss_mb(pid)
    data_dir = _open_data_dir(pid)
    if data_dir is None:
        unavailable["index_bytes_per_sentence"] = f"process {pid} has no citeqa.sqlite3 open"
    else:
        results.update(_index_size(data_dir, results["sentences"] or 0))


# -- the parts -------------------------------------------------------------------------------


class _Questions:
    def __init__(self, path: Path, texts: list[str]):
        self.path = path
        self.texts = texts

    def sample(self, n: int) -> list[str]:
        """The first ``n`` questions (repeated in order when there are fewer)."""
        return list(itertools.islice(itertools.cycle(self.texts), n))

    def warmup(self, n: int) -> list[str]:
        return self.sample(n)[::-1]


def _load_inputs(corpus: Path, questions: Path | None) -> tuple[list[DocumentInput], _Questions]:
    if not corpus.exists():
        raise BenchError(f"corpus {corpus} not found (pass --corpus; the default is ../shared/eval/squad_dev.corpus.jsonl)")
    if questions is None:
        guess = corpus.with_name(corpus.name.replace(".corpus.jsonl", ".jsonl"))
        if guess == corpus or not guess.exists():
            raise BenchError(f"no questions file beside {corpus} (looked for {guess.name}); pass --questions")
        questions = guess
    if not questions.exists():
        raise BenchError(f"questions file {questions} not found")
    try:
        items = read_inputs([corpus])
    except (InvalidDocument, UnicodeDecodeError, ValueError) as exc:
        raise BenchError(f"cannot read the corpus: {exc}") from exc
    if not items:
        raise BenchError(f"{corpus} holds no documents")
    texts = []
    with open(questions, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if line.strip():
                try:
                    texts.append(str(json.loads(line)["question"]))
                except (ValueError, KeyError, TypeError) as exc:
                    raise BenchError(f"{questions}:{number}: not a question object ({exc})") from exc
    if not texts:
        raise BenchError(f"{questions} holds no questions")
    return items, _Questions(questions, texts)


def _split(items: Sequence[DocumentInput]) -> tuple[list[str], float]:
    """The texts the ingestor gives the model for these documents, and the seconds the split took."""
    import citeqa.index.ingest

    # If the ingestor embeds more than the bare sentence (say the title too), so does the raw rate.
    embedding_text = getattr(index.ingest, "embedding_text", lambda title, sentence: sentence)
    t0 = time.perf_counter()
    spans = [(item, split_sentences(item.text)) for item in items]
    took = time.perf_counter() - t0
    return [embedding_text(item.title, item.text[s.start:s.end]) for item, found in spans for s in found], took


# An ingest of one batch: (sentences stored, documents created, sentences of created documents).
IngestBatch = Callable[[Sequence[DocumentInput]], tuple[int, int, int]]


def _in_process_ingest(services: Any) -> IngestBatch:
    def ingest(batch: Sequence[DocumentInput]) -> tuple[int, int, int]:
        done = services.ingestor.ingest_many(batch)
        return (sum(r.sentence_count for r in done), sum(r.created for r in done),
                sum(r.sentence_count for r in done if r.created))
    return ingest


def _http_ingest(client: Any) -> IngestBatch:
    def ingest(batch: Sequence[DocumentInput]) -> tuple[int, int, int]:
        sentences = created = new = 0
        for item in batch:
            r = client.post("/v1/documents", json={"doc_id": item.doc_id, "title": item.title,
                                                   "text": item.text, "metadata": item.metadata})
            if r.status_code >= 400:
                raise BenchError(f"POST /v1/documents for {item.doc_id}: {r.status_code} {r.text[:200]}")
            body = r.json()
            sentences += body["sentence_count"]
            created += body["created"]
            new += body["sentence_count"] if body["created"] else 0
        return sentences, created, new
    return ingest


def _ingest_and_encode(items: Sequence[DocumentInput], ingest: IngestBatch, embedder: Any, repeats: int) -> dict[str, Any]:
    """Ingest ``items`` in batches of INGEST_BATCH documents, each batch beside a raw encode of
    its own sentences (which goes first alternates), so that both rates see the same machine
    load: on a shared 2-core machine that drifts within minutes."""
    if embedder is not None:
        embedder.encode(["warm-up: the first call pays for lazy set-up"] * 8)
    totals = dict.fromkeys(("sentences", "created", "new", "texts", "ingest_s", "split_s", "encode_s"), 0.0)
    batches = []
    for number, start in enumerate(range(0, len(items), INGEST_BATCH)):
        batch = items[start:start + INGEST_BATCH]
        row: dict[str, Any] = {"documents": len(batch)}

        def encode() -> None:
            texts, row["split_s"] = _split(batch)
            row["texts"] = len(texts)
            row["encode_s"] = float(np.median([_timed_s(embedder.encode, texts) for _ in range(repeats)]))

        def store() -> None:
            t0 = time.perf_counter()
            row["sentences"], row["created"], row["new"] = ingest(batch)
            row["ingest_s"] = time.perf_counter() - t0

        steps = [store] if embedder is None else [encode, store] if number % 2 == 0 else [store, encode]
        for step in steps:
            step()
        for key in totals:
            totals[key] += row.get(key, 0.0)
        if embedder is not None and row["new"]:
            row["ingest_vs_encode_ratio"] = round((row["new"] / row["ingest_s"]) / (row["texts"] / row["encode_s"]), 3)
        batches.append({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()})
    ingest_rate = totals["new"] / totals["ingest_s"] if totals["new"] else None
    results: dict[str, Any] = {
        "sentences": int(totals["sentences"]), "ingest_s": round(totals["ingest_s"], 2),
        "ingest_created_documents": int(totals["created"]),
        "ingest_unchanged_documents": len(items) - int(totals["created"]),
        "ingest_sentences_per_s": round(ingest_rate, 1) if ingest_rate else None,
        "ingest_documents_per_s": round(len(items) / totals["ingest_s"], 1),
        "ingest_batches": batches,
    }
    if embedder is not None:
        raw_rate = totals["texts"] / totals["encode_s"]
        per_batch = [b["ingest_vs_encode_ratio"] for b in batches if "ingest_vs_encode_ratio" in b]
        results |= {
            "raw_encode_sentences_per_s": round(raw_rate, 1),
            "raw_encode_repeats": repeats,
            "ingest_vs_encode_ratio": _ratio(ingest_rate, raw_rate),
            "ingest_vs_encode_ratio_batch_median": round(float(np.median(per_batch)), 3) if per_batch else None,
            "split_sentences_per_s": round(totals["texts"] / max(totals["split_s"], 1e-9), 1),
            # What ingest spends beyond splitting and encoding: storing (SQLite, FTS5, FAISS), bookkeeping.
            "ingest_other_s": round(totals["ingest_s"] - totals["split_s"] - totals["encode_s"], 2),
        }
    return results


def _in_process_latency(services: Any, questions: Sequence[str], top_k: int, candidates: int) -> dict[str, Any]:
    """Per question, in rotating order: the floor (its embedding and the dense and BM25
    index searches, what any answer costs at least), an ask and a search, so that the
    three see the same machine load and their ratio means something."""
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
        ms["ask_inprocess"].append(_ms(t0))
        statuses[status] = statuses.get(status, 0) + 1

    def search(q: str) -> None:
        t0 = time.perf_counter()
        services.retriever.search(q, top_k)
        ms["search_inprocess"].append(_ms(t0))

    steps = [floor, ask, search]
    for i, q in enumerate(questions):
        for step in steps[i % 3:] + steps[:i % 3]:
            step(q)
        ms["ratio"].append(ms["ask_inprocess"][-1] / ms["query_floor"][-1])
    results: dict[str, Any] = {}
    for key, values in ms.items():
        if key != "ratio":
            results |= _percentiles(key, values)
    results["ask_inprocess_vs_floor_ratio"] = _ratio(results["ask_inprocess_p50_ms"], results["query_floor_p50_ms"])
    results["ask_inprocess_vs_floor_ratio_paired_median"] = round(float(np.median(ms["ratio"])), 3)
    results["ask_inprocess_status_counts"] = statuses
    results["index_search_candidates"] = candidates
    return results


def _bench_http(results, url, asked, n_queries, warmup, duration, concurrency, log) -> None:
    import httpx

    log(f"HTTP latency over {n_queries} questions")
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
                took.append(_ms(t0))
                if r.status_code != 200:
                    errors += 1
                elif route == "ask":
                    timings = r.json().get("timings_ms", {})
                    for step, ms in timings.items():
                        server_ms.setdefault(step, []).append(ms)
                    if "total" in timings:  # what HTTP, JSON and the event loop add to this request
                        server_ms["overhead"].append(took[-1] - timings["total"])
            results.update(_percentiles(f"{route}_http", took))
    results["latency_http_errors"] = errors
    for step in ("embed", "retrieve", "total"):  # the server's own account of /v1/ask
        if server_ms.get(step):
            results[f"ask_server_{step}_p50_ms"] = round(float(np.median(server_ms[step])), 2)
    if server_ms["overhead"]:
        results["ask_http_overhead_p50_ms"] = round(float(np.median(server_ms["overhead"])), 2)
    throughput = {}
    for clients in concurrency:
        log(f"throughput: {clients} client(s) for {duration:g} s")
        throughput[str(clients)] = _throughput(url, asked.texts, clients, duration)
    results["throughput"] = throughput


def _throughput(url: str, questions: Sequence[str], clients: int, duration: float) -> dict[str, Any]:
    import httpx

    picks = itertools.cycle(questions)
    pick_lock = threading.Lock()
    lock = threading.Lock()
    latencies: list[float] = []
    errors: list[str] = []
    start = threading.Barrier(clients + 1)
    deadline = [0.0]

    def work() -> None:
        with httpx.Client(base_url=url, timeout=300) as client:
            start.wait()
            while time.perf_counter() < deadline[0]:
                with pick_lock:
                    q = next(picks)
                t0 = time.perf_counter()
                try:
                    r = client.post("/v1/ask", json={"question": q})
                    error = None if r.status_code == 200 else f"HTTP {r.status_code}"
                except httpx.HTTPError as exc:
                    error = type(exc).__name__
                took = _ms(t0)
                with lock:
                    if error:
                        errors.append(error)
                    else:
                        latencies.append(took)

    threads = [threading.Thread(target=work, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    deadline[0] = time.perf_counter() + duration
    t0 = time.perf_counter()
    start.wait()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0  # until the last request begun before the deadline ends
    return {
        "clients": clients, "elapsed_s": round(elapsed, 2), "requests": len(latencies) + len(errors),
        "requests_per_s": round(len(latencies) / elapsed, 2), "errors": len(errors),
        "error_kinds": sorted(set(errors)),
        **{k.removeprefix("latency_"): v for k, v in _percentiles("latency", latencies).items()},
    }


# -- the server and the machine ----------------------------------------------------------------


@contextmanager
def running_server(data_dir: Path, log_path: Path) -> Iterator[tuple[str, int, float]]:
    """``citeqa serve`` on a free port over ``data_dir`` (no seeds); yields (url, pid, seconds to ready)."""
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    script = Path(sys.executable).parent / "citeqa"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "citeqa.api.cli"]
    env = {**os.environ, "CITEQA_SEEDS_DIR": "", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    url = f"http://127.0.0.1:{port}"
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(command + ["serve", "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data_dir)],
                                stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT, env=env)
        try:
            t0 = time.perf_counter()
            while True:
                if proc.poll() is not None:
                    raise BenchError(f"citeqa serve exited with {proc.returncode}:\n{_tail(log_path)}")
                if time.perf_counter() - t0 > READY_TIMEOUT_S:
                    raise BenchError(f"citeqa serve not ready after {READY_TIMEOUT_S:g} s:\n{_tail(log_path)}")
                try:
                    if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
            yield url, proc.pid, time.perf_counter() - t0
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)


def _tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


def _peak_rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def _listening_pid(port: int) -> int | None:
    """The pid of the local process listening on TCP ``port`` (Linux /proc; ours to read)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            if any(os.readlink(fd) in inodes for fd in fd_dir.iterdir()):
                return int(fd_dir.parent.name)
        except OSError:
            continue
    return None


def _open_data_dir(pid: int) -> Path | None:
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            target = Path(os.readlink(fd))
            if target.name == "citeqa.sqlite3":
                return target.parent
    except OSError:
        pass
    return None


def _index_size(data_dir: Path, sentences: int) -> dict[str, Any]:
    sizes = {name: (data_dir / name).stat().st_size if (data_dir / name).exists() else 0 for name in INDEX_FILES}
    total = sum(sizes.values())
    # The files depend on when SQLite last checkpointed its WAL (a running server's data can
    # sit mostly in the -wal file); page_count * page_size is the database as it is logically.
    logical = None
    try:
        with closing(sqlite3.connect(f"file:{data_dir / INDEX_FILES[0]}?mode=ro", uri=True)) as conn:
            logical = conn.execute("PRAGMA page_count").fetchone()[0] * conn.execute("PRAGMA page_size").fetchone()[0]
    except sqlite3.Error:
        pass
    return {
        "index_files_bytes": sizes, "index_bytes_total": total,
        "index_bytes_per_sentence": round(total / sentences, 1) if sentences else None,
        "sqlite_logical_bytes": logical,
        "index_logical_bytes_per_sentence": round((logical + sizes["vectors.faiss"]) / sentences, 1)
        if sentences and logical is not None else None,
    }


@contextmanager
def _work_dir(work_dir: Path | None) -> Iterator[Path]:
    if work_dir is not None:
        work_dir.mkdir(parents=True, exist_ok=True)
        yield work_dir
        return
    with tempfile.TemporaryDirectory(prefix="citeqa-bench-") as tmp:
        yield Path(tmp)


def _config(settings: Settings | None, repeats, duration, n_queries, warmup, asked, concurrency) -> dict[str, Any]:
    config: dict[str, Any] = {
        "repeats": repeats, "duration_s": duration, "latency_questions": n_queries, "warmup_questions": warmup,
        "questions_available": len(asked.texts), "ingest_batch_documents": INGEST_BATCH,
        "concurrency": list(concurrency),
    }
    if settings is not None:
        config["settings"] = settings.model_dump(mode="json")
    return config


def _machine() -> dict[str, Any]:
    machine: dict[str, Any] = {
        "cpu_count": os.cpu_count(), "platform": platform.platform(), "processor": platform.processor() or None,
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
        # OpenMP's spin-waiting decides a lot on a busy 2-core machine: record how it was set.
        "thread_env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT",
                                                       "MKL_NUM_THREADS", "TOKENIZERS_PARALLELISM")},
    }
    if hasattr(os, "sched_getaffinity"):
        machine["cpus_usable"] = len(os.sched_getaffinity(0))
    try:
        import torch

        machine["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    return machine


def _versions() -> dict[str, Any]:
    versions: dict[str, Any] = {"python": platform.python_version(), **_git_state()}
    for name in ("citeqa", "torch", "faiss-cpu", "sentence-transformers", "transformers", "numpy", "fastapi",
                 "uvicorn", "httpx"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _git_state() -> dict[str, Any]:
    """The commit benched, and whether the work tree had uncommitted changes."""
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        status = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return {}
    if head.returncode != 0:
        return {}
    return {"git_commit": head.stdout.strip(), "git_dirty": bool(status.stdout.strip())}


# -- small helpers ----------------------------------------------------------------------------


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000


def _timed_s(fn: Callable, *args: Any) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def _timed_ms(fn: Callable, *args: Any) -> float:
    return _timed_s(fn, *args) * 1000


def _percentiles(name: str, values: Sequence[float]) -> dict[str, float | None]:
    if not values:
        return {f"{name}_p50_ms": None, f"{name}_p95_ms": None}
    p50, p95 = np.percentile(values, [50, 95])
    return {f"{name}_p50_ms": round(float(p50), 2), f"{name}_p95_ms": round(float(p95), 2)}


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def _get_json(url: str, path: str) -> dict[str, Any]:
    import httpx

    return httpx.get(f"{url}{path}", timeout=10).json()


# -- the terminal table ------------------------------------------------------------------------


def print_results(r: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console()

    def fmt(value: Any, unit: str = "") -> str:
        if value is None:
            return "–"
        if isinstance(value, float):
            value = f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
        return f"{value}{unit}"

    main = Table(title=f"citeqa bench ({r['mode']}): {r['documents']} documents, {r.get('sentences')} sentences",
                 show_header=True, header_style="bold")
    main.add_column("measure")
    main.add_column("value", justify="right")
    rows = [
        ("ingest", fmt(r.get("ingest_sentences_per_s"), " sentences/s")),
        ("raw encode, same batches", fmt(r.get("raw_encode_sentences_per_s"), " sentences/s")),
        ("ingest / raw encode", fmt(r.get("ingest_vs_encode_ratio"))),
        ("sentence split alone", fmt(r.get("split_sentences_per_s"), " sentences/s")),
        ("query embed p50", fmt(r.get("query_embed_p50_ms"), " ms")),
        ("index search p50 (dense + BM25)", fmt(r.get("index_search_p50_ms"), " ms")),
        ("query floor p50", fmt(r.get("query_floor_p50_ms"), " ms")),
        ("ask in process / floor", fmt(r.get("ask_inprocess_vs_floor_ratio"))),
        ("ask over HTTP / floor", fmt(r.get("ask_http_vs_floor_ratio"))),
        ("HTTP overhead p50 (client − server time)", fmt(r.get("ask_http_overhead_p50_ms"), " ms")),
        ("server peak RSS", fmt(r.get("server_peak_rss_mb"), " MB")),
        ("bench peak RSS", fmt(r.get("bench_peak_rss_mb"), " MB")),
        ("index bytes / sentence (files)", fmt(r.get("index_bytes_per_sentence"), " B")),
        ("index bytes / sentence (logical)", fmt(r.get("index_logical_bytes_per_sentence"), " B")),
    ]
    for name, size in (r.get("index_files_bytes") or {}).items():
        rows.append((f"  {name}", f"{size / 1e6:,.2f} MB"))
    for row in rows:
        main.add_row(*row)
    console.print(main)

    latency = Table(title="latency (ms)", header_style="bold")
    for column in ("route", "p50", "p95"):
        latency.add_column(column, justify="left" if column == "route" else "right")
    for label, key in (("/v1/ask in process", "ask_inprocess"), ("/v1/ask HTTP", "ask_http"),
                       ("/v1/search in process", "search_inprocess"), ("/v1/search HTTP", "search_http")):
        latency.add_row(label, fmt(r.get(f"{key}_p50_ms")), fmt(r.get(f"{key}_p95_ms")))
    console.print(latency)

    throughput = Table(title=f"HTTP /v1/ask throughput ({r['config']['duration_s']:g} s each)", header_style="bold")
    for column in ("clients", "requests/s", "p50 ms", "p95 ms", "errors"):
        throughput.add_column(column, justify="right")
    for clients, t in (r.get("throughput") or {}).items():
        throughput.add_row(clients, fmt(t["requests_per_s"]), fmt(t["p50_ms"]), fmt(t["p95_ms"]), str(t["errors"]))
    console.print(throughput)
    for key, reason in r.get("unavailable", {}).items():
        console.print(f"[yellow]{key}[/yellow]: {reason}")
    console.print(f"[dim]load average {r['machine']['loadavg_start']} → {r['machine'].get('loadavg_end')}, "
                  f"{r['machine']['cpu_count']} CPUs, {r['elapsed_s']} s[/dim]")
