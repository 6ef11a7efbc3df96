"""``citeqa stress``: "nothing acknowledged is ever lost", checked by force and under load.

- ``crash``: writers POST documents while the server is SIGKILLed at a random moment; after
  each restart every acknowledged write must be readable at its version with the same text
  and be found by search, and the FAISS file must hold exactly SQLite's live sentence ids.
  Every few cycles the FAISS file is also torn, overwritten or deleted while the server is down.
- ``load``: N concurrent clients for a fixed time on a mix of ask/search/ingest: requests,
  errors, throughput and p50/p95/p99 latency per client count.

Servers come from :func:`api.bench.running_server` (free port, no seeds, a log file).
"""

from __future__ import annotations

import ipaddress
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import tempfile
import threading
import time
from collections import Counter
from contextlib import ExitStack, closing
from pathlib import Path
from typing import Any, Callable, Optional, Sequence
from unittest.mock import patch
from urllib.parse import urlparse

import httpx
import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from citeqa.api.bench import BenchError, running_server
from citeqa.api.settings import PROJECT_ROOT
from citeqa.index.faiss_index import VectorIndex

stress_app = typer.Typer(no_args_is_help=True, help="Stress tests: SIGKILL during ingest, and concurrent load.")
Log = Callable[[str], None]
Acked = dict[str, dict[str, str]]  # doc_id -> {version, text, word}
CORRUPTIONS = ("truncate", "garbage", "delete")
# FAISS saved on every write (so a kill can land mid-save), every 0.5 s, and at the default 5 s
# (then a kill nearly always finds the file stale): recovery must not depend on which.
SAVE_INTERVALS = ("5", "0", "0.5")
_REBUILT = re.compile(r"reconciled vector index: (\d+) added")
_SYLLABLES = "ka ve lo ri mu ta so ne di pa zu fe go hi ju be".split()


def register(app: typer.Typer) -> None:
    app.add_typer(stress_app, name="stress")


# -- crash ------------------------------------------------------------------------------------


def fact_doc(cycle: int, i: int) -> tuple[str, str, str]:
    """(doc_id, text, code word); the word is unique to the document (16**6 of them), so a
    search for it must return this document whatever else is stored."""
    n = number = cycle * 4096 + i
    word = ""
    for _ in range(6):
        n, digit = divmod(n, 16)
        word += _SYLLABLES[digit]
    word = word.capitalize()
    text = (f"Document {number}: the code word for city {number} is {word}. The courier for city {number} "
            f"travels by {['rail', 'ferry', 'bicycle', 'mule'][i % 4]} and arrives on day {i % 28 + 1}. "
            f"Residents keep the code word written inside the {['chapel', 'granary', 'lighthouse'][i % 3]}.")
    return f"stress-{cycle}-{i}", text, word


def _write_until_killed(url: str, cycle: int, first: int, step: int, acked: Acked, in_flight: dict[str, str],
                        unexpected: list[str], killed: threading.Event) -> None:
    """POST new documents one after another until the connection fails: after the kill that is
    the point; before it, the server failed on its own."""
    with httpx.Client(base_url=url, timeout=30) as client:
        for i in range(first, 4096, step):
            doc_id, text, word = fact_doc(cycle, i)
            in_flight[doc_id] = text
            try:
                r = client.post("/v1/documents", json={"doc_id": doc_id, "text": text})
            except httpx.TransportError as exc:
                if not killed.is_set():
                    unexpected.append(f"{doc_id}: {type(exc).__name__} before the kill")
                return
            if r.status_code not in (200, 201):
                unexpected.append(f"{doc_id}: HTTP {r.status_code} {r.text[:200]}")
                return
            acked[doc_id] = {"version": r.json()["doc_version"], "text": text, "word": word}
            del in_flight[doc_id]


def _ingest_and_kill(url: str, pid: int, cycle: int, writers: int, max_delay_s: float, rng: random.Random,
                     unexpected: list[str]) -> tuple[Acked, dict[str, str]]:
    """Concurrent writers, a SIGKILL after the first ack plus a random delay; (acked, in flight)."""
    acked: Acked = {}
    in_flight: dict[str, str] = {}
    killed = threading.Event()
    threads = [threading.Thread(target=_write_until_killed, daemon=True,
                                args=(url, cycle, w, writers, acked, in_flight, unexpected, killed))
               for w in range(writers)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60  # wait for one ack, so that every cycle tests something
    while not acked and time.monotonic() < deadline and all(t.is_alive() for t in threads):
        time.sleep(0.01)
    time.sleep(rng.uniform(0, max_delay_s))
    killed.set()
    os.kill(pid, signal.SIGKILL)
    for t in threads:
        t.join(30)
    return acked, in_flight


def index_agreement(data_dir: Path) -> tuple[set[int], set[int]]:
    """(SQLite's live sentence ids, the FAISS file's ids), read-only: the server may be up."""
    with closing(sqlite3.connect(f"file:{data_dir / 'citeqa.sqlite3'}?mode=ro", uri=True)) as conn:
        live = {r[0] for r in conn.execute("SELECT id FROM sentences WHERE active = 1")}
        row = conn.execute("SELECT value FROM meta WHERE key = 'dimension'").fetchone()
    # The server's own loader: an unreadable file loads empty, which then shows as a mismatch.
    return live, set(VectorIndex.load(data_dir / "vectors.faiss", int(row[0])).ids().tolist()) if row else set()


def corrupt_faiss(path: Path, how: str, rng: random.Random) -> None:
    size = path.stat().st_size if path.exists() else 4096
    if how == "delete":
        path.unlink(missing_ok=True)
    elif how == "truncate" and path.exists():  # a torn write: the first half survives
        os.truncate(path, size // 2)
    else:
        path.write_bytes(rng.randbytes(size))


def _verify(client: httpx.Client, acked: Acked, search: Sequence[str], in_flight: dict[str, str],
            r: dict[str, Any]) -> Acked:
    """Acked docs readable at their version with their text, those in ``search`` found by
    search; a write in flight at the kill is whole or absent. Returns the in-flight ones applied."""
    applied: Acked = {}
    for doc_id, text in in_flight.items():
        got = client.get(f"/v1/documents/{doc_id}")
        if got.status_code == 200 and got.json()["text"] != text:
            r["torn_in_flight"].append(doc_id)
        elif got.status_code == 200:
            cycle, i = map(int, doc_id.split("-")[1:])
            applied[doc_id] = {"version": got.json()["doc_version"], "text": text, "word": fact_doc(cycle, i)[2]}
    for doc_id, want in acked.items():
        got = client.get(f"/v1/documents/{doc_id}", params={"version": want["version"]})
        if got.status_code != 200 or got.json()["text"] != want["text"]:
            r["lost"].append(f"{doc_id}@{want['version']}: HTTP {got.status_code}")
    for doc_id in [*search, *applied]:
        want = acked.get(doc_id) or applied[doc_id]
        query = {"query": f"Which city uses the code word {want['word']}?", "top_k": 5}
        if not any((h["doc_id"], h["doc_version"]) == (doc_id, want["version"])
                   for h in client.post("/v1/search", json=query).json().get("hits", [])):
            r["unsearchable"].append(doc_id)
    return applied


def run_crash(cycles: int = 20, seed: int = 0, data_dir: Path | None = None, corrupt_every: int = 3,
              max_delay_s: float = 2.5, writers: int = 2, log: Log = lambda message: None) -> dict[str, Any]:
    """``cycles`` × (start, verify, ingest, SIGKILL), then a last start that verifies all and
    stops cleanly. ``ok`` is False if anything acknowledged was lost or unsearchable, FAISS and
    SQLite disagree, a corrupted FAISS file was not rebuilt, or the server failed to start."""
    rng = random.Random(seed)
    work = Path(tempfile.mkdtemp(prefix="citeqa-stress-"))
    data_dir = Path(data_dir) if data_dir else work / "data"
    r: dict[str, Any] = {"cycles": cycles, "seed": seed, "kills": 0, "lost": [], "unsearchable": [],
                         "torn_in_flight": [], "index_mismatches": [], "unexpected": [], "server_failures": [],
                         "corruptions": [], "faiss_rebuilds": 0, "faiss_catch_ups": 0, "in_flight_applied": 0,
                         "tracebacks": 0, "acked_per_cycle": [], "cycle_s": [], "ready_s": []}
    acked: Acked = {}  # every acknowledged write so far: all are read back after each restart
    latest: Acked = {}  # the last life's: searched for after each restart (all of them are at the end)
    in_flight: dict[str, str] = {}
    corrupted = False
    for life in range(cycles + 1):
        t0, last, log_path = time.perf_counter(), life == cycles, work / f"serve-{life}.log"
        # running_server passes our environment on to `citeqa serve`; patch.dict restores it.
        save_interval = {"CITEQA_FAISS_SAVE_INTERVAL_S": SAVE_INTERVALS[life % len(SAVE_INTERVALS)]}
        try:
            with patch.dict(os.environ, save_interval), running_server(data_dir, log_path) as (url, pid, ready_s):
                r["ready_s"].append(round(ready_s, 2))
                with httpx.Client(base_url=url, timeout=60) as client:
                    applied = _verify(client, acked, list(acked) if corrupted or last else list(latest),
                                      in_flight, r)
                acked.update(applied)
                r["in_flight_applied"] += len(applied)
                live, on_disk = index_agreement(data_dir)  # nothing written since the start's reconcile
                if live != on_disk:
                    r["index_mismatches"].append(f"life {life}: {len(live)} live sentences, "
                                                 f"{len(on_disk)} in FAISS, {len(live ^ on_disk)} differ")
                added = sum(int(n) for n in _REBUILT.findall(log_path.read_text(errors="replace")))
                if corrupted:  # the whole index must have come back from SQLite
                    r["faiss_rebuilds"] += int(added == len(live) > 0)
                elif added:
                    r["faiss_catch_ups"] += 1  # the kill came before a FAISS save: expected
                if not last:
                    latest, in_flight = _ingest_and_kill(url, pid, life, writers, max_delay_s, rng,
                                                         r["unexpected"])
                    r["kills"] += 1
                    acked.update(latest)
                    r["acked_per_cycle"].append(len(latest))
                    log(f"cycle {life + 1}/{cycles}: {len(latest)} acknowledged, "
                        f"{len(in_flight)} in flight at the kill")
        except (BenchError, httpx.HTTPError) as exc:  # it did not start, or died while being checked
            r["server_failures"].append(f"life {life}: {type(exc).__name__}: {exc}")
            break
        r["tracebacks"] += log_path.read_text(errors="replace").count("Traceback")
        corrupted = not last and corrupt_every > 0 and (life + 1) % corrupt_every == 0
        if corrupted:
            r["corruptions"].append(CORRUPTIONS[len(r["corruptions"]) % len(CORRUPTIONS)])
            corrupt_faiss(data_dir / "vectors.faiss", r["corruptions"][-1], rng)
            log(f"  FAISS file: {r['corruptions'][-1]}")
        r["cycle_s"].append(round(time.perf_counter() - t0, 2))
    live, on_disk = index_agreement(data_dir) if (data_dir / "citeqa.sqlite3").exists() else (set(), set())
    if live != on_disk:  # after the clean stop (which saves FAISS) too
        r["index_mismatches"].append(f"after shutdown: {len(live)} live, {len(on_disk)} in FAISS")
    # Saves cut short by a kill leave their temporary file behind: no harm to the data, but disk.
    r["stray_tmp_files"] = sorted(p.name for p in data_dir.glob("vectors.faiss.*.tmp"))
    r.update(acknowledged=len(acked), lost_count=len(r["lost"]), cycle_s_median=float(np.median(r["cycle_s"] or [0])),
             ready_s_median=float(np.median(r["ready_s"] or [0])))
    r["ok"] = not (r["lost"] or r["unsearchable"] or r["torn_in_flight"] or r["index_mismatches"] or r["unexpected"]
                   or r["server_failures"] or r["tracebacks"] or r["faiss_rebuilds"] != len(r["corruptions"]))
    if r["ok"]:
        shutil.rmtree(work, ignore_errors=True)
    else:
        r["logs"] = str(work)  # kept for the post-mortem
    return r


# -- load -------------------------------------------------------------------------------------

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
    mix = dict.fromkeys(OPERATIONS, 0)
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, weight = part.partition("=")
        if name not in mix or not weight.isdigit():
            raise ValueError(f"--mix wants NAME=INT with NAME in {', '.join(OPERATIONS)}, got {part!r}")
        mix[name] = int(weight)
    if not any(mix.values()):
        raise ValueError("--mix gives every operation weight 0")
    return mix


def is_loopback(url: str) -> bool:
    host = urlparse(url).hostname or ""
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _percentiles(ms: Sequence[float]) -> dict[str, float | None]:
    values = np.percentile(ms, [50, 95, 99]).tolist() if len(ms) else [None] * 3
    return {f"p{p}_ms": None if v is None else round(v, 1) for p, v in zip((50, 95, 99), values)}


def _level(url: str, clients: int, duration: float, mix: dict[str, int], seed: int, tag: str,
           headers: dict[str, str]) -> dict[str, Any]:
    """``clients`` threads, each with its own connection, until one shared deadline."""
    done: list[tuple[str, float]] = []  # (operation, ms) of each 2xx
    errors: Counter[str] = Counter()
    statuses: Counter[str] = Counter()
    cut_off = []
    lock, start, deadline = threading.Lock(), threading.Barrier(clients + 1), [0.0]

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
                t0 = time.perf_counter()
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
                        done.append((op, (time.perf_counter() - t0) * 1000))
                        if op == "ask":
                            statuses[r.json()["status"]] += 1
                    else:
                        errors[f"{op} HTTP {r.status_code}"] += 1

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    deadline[0] = time.monotonic() + duration
    t0 = time.perf_counter()
    start.wait()
    for t in threads:
        t.join(max(0.0, deadline[0] - time.monotonic()) + 5)  # a stuck client is abandoned (daemon)
    elapsed = time.perf_counter() - t0
    figures: dict[str, Any] = {"clients": clients, "elapsed_s": round(elapsed, 2), "per_operation": {},
                               "unfinished_at_deadline": len(cut_off), "error_kinds": dict(errors),
                               "ask_status": dict(statuses)}
    for op in [None, *(o for o in OPERATIONS if mix[o])]:
        ms = [m for o, m in done if op in (None, o)]
        failed = sum(v for k, v in errors.items() if op is None or k.startswith(op + " "))
        row = {"requests": len(ms) + failed, "errors": failed, "req_per_s": round(len(ms) / elapsed, 2),
               **_percentiles(ms)}
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
    if url and not (allow_remote or is_loopback(url)):
        raise BenchError(f"{url} is not a loopback address; this is a load generator (pass --allow-remote)")
    result: dict[str, Any] = {"url": url, "mix": mix, "duration_s": duration, "seed": seed,
                              "cpu_count": os.cpu_count(), "loadavg_start": os.getloadavg(), "levels": []}
    tag = f"{os.getpid()}-{int(time.time())}"  # new doc_ids on every run, so each ingest really embeds
    with tempfile.TemporaryDirectory(prefix="citeqa-load-") as tmp, ExitStack() as stack:
        try:
            if url is None:  # running_server indexes no seeds: add the article the questions are about
                url = stack.enter_context(running_server(Path(tmp) / "data", Path(tmp) / "serve.log"))[0]
                from citeqa.index.ingest import read_inputs

                for item in read_inputs([PROJECT_ROOT / "seeds"]):
                    httpx.post(f"{url}/v1/documents", timeout=60, json={
                        "doc_id": item.doc_id, "title": item.title, "text": item.text, "metadata": item.metadata})
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


# -- the commands -----------------------------------------------------------------------------


def _finish(console: Console, title: str, columns: Sequence[str], rows: list[Sequence[Any]],
            figures: dict[str, Any], json_out: Path | None, failed: bool) -> None:
    table = Table(title=title, header_style="bold")
    for column in columns:  # words left, figures right
        table.add_column(column, justify="left" if column in ("measure", "operation") else "right")
    for row in rows:
        table.add_row(*("–" if v is None else f"{v:.0f}" if isinstance(v, float) else str(v) for v in row))
    console.print(table)
    if json_out:
        json_out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
        console.print(f"figures written to {json_out}")
    raise typer.Exit(1 if failed else 0)


@stress_app.command("crash")
def crash_command(
    cycles: int = typer.Option(20, min=1, help="SIGKILLs during ingest, each followed by a restart and checks."),
    seed: int = typer.Option(0, help="Seeds kill delays and corruptions (a failure can be replayed)."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Default: a fresh temporary directory."),
    corrupt_every: int = typer.Option(3, min=0, help="Tear/overwrite/delete the FAISS file every N cycles (0: never)."),
    max_delay: float = typer.Option(2.5, min=0, help="The kill comes up to this many seconds after the first ack."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the figures here."),
) -> None:
    """SIGKILL the server during ingest: every acknowledged document must survive, searchable."""
    console = Console()
    r = run_crash(cycles, seed, data_dir, corrupt_every, max_delay, log=lambda m: console.print(f"[dim]{m}[/dim]"))
    for problem in r["lost"] + r["unsearchable"] + r["index_mismatches"] + r["unexpected"] + r["server_failures"]:
        console.print(f"[red]{problem}[/red]")
    if not r["ok"]:
        console.print(f"[red]FAILED[/red]; server logs kept in {r['logs']}")
    _finish(console, f"citeqa stress crash (seed {seed})", ("measure", "value"), [
        ("cycles / kills", f"{r['cycles']} / {r['kills']}"), ("acknowledged documents", r["acknowledged"]),
        ("lost (target 0)", r["lost_count"]), ("not found by search", len(r["unsearchable"])),
        ("in flight at a kill: stored whole / torn", f"{r['in_flight_applied']} / {len(r['torn_in_flight'])}"),
        ("FAISS file corrupted / rebuilt", f"{len(r['corruptions'])} / {r['faiss_rebuilds']}"),
        ("FAISS caught up after a kill", r["faiss_catch_ups"]), ("FAISS ≠ SQLite", len(r["index_mismatches"])),
        ("server failures / tracebacks", f"{len(r['server_failures'])} / {r['tracebacks']}"),
        ("stray FAISS .tmp files (a kill mid-save)", len(r["stray_tmp_files"])),
        ("s per cycle (median, max)", f"{r['cycle_s_median']:.1f}, {max(r['cycle_s'] or [0]):.1f}"),
        ("s to ready (median)", f"{r['ready_s_median']:.1f}")], r, json_out, not r["ok"])


@stress_app.command("load", context_settings={"allow_extra_args": True})
def load_command(
    ctx: typer.Context,
    clients: Optional[list[str]] = typer.Option(None, help="Clients per level: --clients 1 8 32 (default; or 1,8,32)."),
    duration: float = typer.Option(20.0, min=0.1, help="Seconds per level: a hard limit."),
    mix: str = typer.Option("ask=6,search=3,ingest=1", help="Relative weights of the operations."),
    url: Optional[str] = typer.Option(None, "--url", help="A running server (ingest adds stress-load-* docs to it)."),
    allow_remote: bool = typer.Option(False, "--allow-remote", help="Allow a --url that is not a loopback address."),
    seed: int = typer.Option(0, help="Seeds each client's choice of operations and questions."),
    api_key: Optional[str] = typer.Option(None, "--api-key", envvar="CITEQA_API_KEY",
                                          help="For a --url server that wants a key (its rate limit applies)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the figures here."),
) -> None:
    """Concurrent clients for a fixed time: requests, errors, throughput, p50/p95/p99."""
    console = Console()
    # Click has no variadic options: `--clients 1 8 32` leaves 8 and 32 as extra arguments.
    given = (clients or []) + ctx.args
    if ctx.args and not clients:
        raise typer.BadParameter(f"unexpected arguments {ctx.args}", param_hint="--clients")
    try:
        counts = [int(c) for item in given or ["1,8,32"] for c in item.split(",") if c.strip()]
        if not counts or min(counts) < 1:
            raise ValueError
        r = run_load(url, counts, duration, parse_mix(mix), allow_remote, seed, api_key,
                     log=lambda m: console.print(f"[dim]{m}[/dim]"))
    except (ValueError, BenchError) as exc:
        console.print(f"[red]stress load:[/red] {str(exc) or f'--clients wants positive integers, got {given}'}")
        raise typer.Exit(2)
    for level in r["levels"]:
        if level["error_kinds"]:
            console.print(f"[red]{level['clients']} clients: {level['error_kinds']}[/red]")
    console.print(f"[dim]load average {r['loadavg_start'][0]:.2f} → {r['loadavg_end'][0]:.2f} on {r['cpu_count']} "
                  "CPUs; requests still running at a level's deadline are cut off, not counted[/dim]")
    columns = ("clients", "operation", "requests", "errors", "req/s", "p50 ms", "p95 ms", "p99 ms")
    rows = [(level["clients"] if op == "all" else "", op, f["requests"], f["errors"], f"{f['req_per_s']:.1f}",
             f["p50_ms"], f["p95_ms"], f["p99_ms"])
            for level in r["levels"] for op, f in [("all", level), *level["per_operation"].items()]]
    _finish(console, f"citeqa stress load: {duration:g} s per level, mix {mix}", columns, rows, r, json_out,
            r["errors"] > 0)
