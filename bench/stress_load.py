"""``citeqa stress load``: N concurrent clients for a fixed time on a mix of ask, search and
ingest: requests, errors, throughput and p50/p95/p99 latency per client count."""

from __future__ import annotations

import os
import random
import tempfile
import threading
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Callable, Sequence
from urllib.parse import urlparse

import httpx

from citeqa.api.client import document_payload
from citeqa.api.security import is_loopback
from citeqa.api.settings import packaged_seeds
from citeqa.bench.errors import BenchError
from citeqa.bench.percentiles import percentiles
from citeqa.bench.processes import running_server

Log = Callable[[str], None]
QUESTIONS = [
    "How many troops did North Korea send?", "How many soldiers has North Korea dispatched to Russia?",
    "Who is Russia's ambassador to Pyongyang?", "What is the name of the Russian ambassador in North Korea?",
    "Where are wounded Russian soldiers treated?", "Did North Korea ask for compensation?",
    "Which cities will host North Korean teachers?", "In which Russian cities will North Korean teachers work?",
    "How many North Koreans crossed into Russia in 2024?", "What does SVO stand for?",
    "How many North Koreans entered Russia for work?", "Where are North Korean workers being sent?",
    "What is the boiling point of tungsten?",  # off topic on purpose: abstaining is a code path too
]
OPERATIONS = ("ask", "search", "ingest")


def parse_mix(text: str) -> dict[str, int]:
    """``ask=6,search=3,ingest=1`` → weights (an operation not named weighs 0)."""
    return parse_weights(text, OPERATIONS)


def parse_weights(text: str, operations: Sequence[str]) -> dict[str, int]:
    """``NAME=INT,...`` over ``operations`` → weights (one not named weighs 0)."""
    mix = dict.fromkeys(operations, 0)
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, weight = part.partition("=")
        if name not in mix or not weight.isdigit():
            raise ValueError(f"--mix wants NAME=INT with NAME in {', '.join(operations)}, got {part!r}")
        mix[name] = int(weight)
    if not any(mix.values()):
        raise ValueError("--mix gives every operation weight 0")
    return mix


def ingest_seed_article(url: str) -> None:
    """The packaged seed article, which the questions are about, into the server at ``url``
    (servers from running_server index no seeds)."""
    from citeqa.index.ingest import read_inputs

    for item in read_inputs([packaged_seeds()]):
        httpx.post(f"{url}/v1/documents", timeout=60, json=document_payload(item)).raise_for_status()


def is_loopback_url(url: str) -> bool:
    """Whether ``url`` names this machine by a loopback address (a URL without a host does not)."""
    host = urlparse(url).hostname  # None for no host: security's is_loopback("") means "bind default"
    return host is not None and is_loopback(host)


def _level(url: str, clients: int, duration: float, mix: dict[str, int], seed: int, tag: str,
           headers: dict[str, str]) -> dict[str, Any]:
    """``clients`` threads, each with its own connection, until one shared deadline."""
    done: list[tuple[str, float]] = []  # (operation, ms) of each 2xx
    errors: Counter[str] = Counter()
    statuses: Counter[str] = Counter()
    cut_off = []
    lock, deadline, t0 = threading.Lock(), [0.0], [0.0]

    def open_window() -> None:  # run once, when every client is ready, before any is released
        t0[0], deadline[0] = time.perf_counter(), time.monotonic() + duration

    start = threading.Barrier(clients + 1, action=open_window)

    def client(number: int) -> None:
        rng = random.Random(f"{seed}-{clients}-{number}")
        with httpx.Client(base_url=url, headers=headers) as http:
            start.wait()
            for n in range(10**9):
                left = deadline[0] - time.monotonic()
                if left <= 0:
                    return
                op = rng.choices(list(mix), list(mix.values()))[0]
                body: dict[str, str] = {"question" if op == "ask" else "query": rng.choice(QUESTIONS)}
                if op == "ingest":
                    body = {"doc_id": f"stress-load-{tag}-{clients}-{number}-{n}",
                            "text": f"Load note {tag}-{clients}-{number}-{n}: depot {n} ships {rng.randint(1, 999)} "
                                    f"crates on day {n}. Its manager signs every manifest in green ink."}
                sent = time.perf_counter()
                try:  # the timeout is what is left of the run: the duration is a hard limit
                    r = http.post("/v1/documents" if op == "ingest" else f"/v1/{op}", json=body, timeout=left)
                except httpx.HTTPError as exc:
                    with lock:
                        if isinstance(exc, httpx.TimeoutException) and time.monotonic() >= deadline[0]:
                            cut_off.append(op)  # still running when time was up: neither error nor timed
                        else:
                            errors[f"{op} {type(exc).__name__}"] += 1
                    continue
                with lock:
                    if r.is_success:
                        done.append((op, (time.perf_counter() - sent) * 1000))
                        if op == "ask":
                            statuses[r.json()["status"]] += 1
                    else:
                        errors[f"{op} HTTP {r.status_code}"] += 1

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    start.wait()  # the level's time starts when every client is ready (opening 32 takes a while)
    for t in threads:
        t.join(max(0.0, deadline[0] - time.monotonic()) + 5)  # a stuck client is abandoned (daemon)
    elapsed = time.perf_counter() - t0[0]
    figures: dict[str, Any] = {"clients": clients, "elapsed_s": round(elapsed, 2), "per_operation": {},
                               "unfinished_at_deadline": len(cut_off), "error_kinds": dict(errors),
                               "ask_status": dict(statuses)}
    for op in [None, *(o for o in OPERATIONS if mix[o])]:
        ms = [m for o, m in done if op in (None, o)]
        failed = sum(v for k, v in errors.items() if op is None or k.startswith(op + " "))
        row = {"requests": len(ms) + failed, "errors": failed, "req_per_s": round(len(ms) / elapsed, 2),
               **percentiles(ms, (50, 95, 99), digits=1)}
        if op is None:
            figures.update(row)
        else:
            figures["per_operation"][op] = row
    return figures


def run_load(url: str | None = None, clients: Sequence[int] = (1, 8, 32), duration: float = 20.0,
             mix: dict[str, int] | None = None, allow_remote: bool = False, seed: int = 0,
             api_key: str | None = None, log: Log = lambda message: None) -> dict[str, Any]:
    """Each client count in turn for ``duration`` seconds, against ``url`` or a server started
    here on 127.0.0.1 (a fresh data dir holding the seed article). ``api_key`` is for a server
    that wants one; its per-key rate limit then applies (429s count as errors)."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    mix = mix or parse_mix("ask=6,search=3,ingest=1")
    if url and not (allow_remote or is_loopback_url(url)):
        raise BenchError(f"{url} is not a loopback address; this is a load generator (pass --allow-remote)")
    result: dict[str, Any] = {"url": url, "mix": mix, "duration_s": duration, "seed": seed,
                              "cpu_count": os.cpu_count(), "loadavg_start": os.getloadavg(), "levels": []}
    tag = f"{os.getpid()}-{int(time.time())}"  # new doc_ids on every run, so each ingest really embeds
    with tempfile.TemporaryDirectory(prefix="citeqa-load-") as tmp, ExitStack() as stack:
        try:
            if url is None:
                url = stack.enter_context(running_server(Path(tmp) / "data", Path(tmp) / "serve.log")).url
                ingest_seed_article(url)
            url = url.rstrip("/")
            if httpx.get(f"{url}/readyz", timeout=10).status_code != 200:
                raise BenchError(f"{url}/readyz: the server is not ready")
            for q in QUESTIONS:  # warm-up: first calls pay for lazy set-up
                httpx.post(f"{url}/v1/ask", json={"question": q}, headers=headers, timeout=60)
            for n in clients:
                log(f"{n} client(s) for {duration:g} s")
                result["levels"].append(_level(url, n, duration, mix, seed, tag, headers))
                time.sleep(1.0)  # requests cut off at the deadline drain before the next level
        except httpx.HTTPError as exc:
            raise BenchError(f"cannot reach {url}: {exc}") from exc
    result["loadavg_end"] = os.getloadavg()
    result["errors"] = sum(level["errors"] for level in result["levels"])
    return result
