"""``citeqa stress crash``: "nothing acknowledged is ever lost", checked by force.

Writers POST documents while the server is SIGKILLed at a random moment; after each restart
every acknowledged write must be readable at its version with the same text and be found by
search, and the FAISS file and the Tantivy sentence index must hold exactly SQLite's live
sentence ids. Every few cycles the FAISS file is also torn, overwritten or deleted, and the
lexical index deleted or its mark garbled, while the server is down.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import sqlite3
import tempfile
import threading
import time
from contextlib import closing
from pathlib import Path
from typing import Any, Callable, Sequence
from unittest.mock import patch

import httpx
import numpy as np

from citeqa.api.client import error_message
from citeqa.bench.errors import BenchError
from citeqa.bench.processes import running_server
from citeqa.index.faiss_index import VectorIndex
from citeqa.index.tantivy_lexical import indexed_sentence_ids

Log = Callable[[str], None]
Acked = dict[str, dict[str, str]]  # doc_id -> {version, text, word}
CORRUPTIONS = ("truncate", "garbage", "delete")
# FAISS saved on every write (so a kill can land mid-save), every 0.5 s, and at the default 5 s
# (then a kill nearly always finds the file stale): recovery must not depend on which.
SAVE_INTERVALS = ("5", "0", "0.5")
_REBUILT = re.compile(r"reconciled vector index: (\d+) added")
_SYLLABLES = "ka ve lo ri mu ta so ne di pa zu fe go hi ju be".split()


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
                unexpected.append(f"{doc_id}: HTTP {r.status_code} {error_message(r)}")
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


def lexical_agreement(data_dir: Path) -> tuple[set[int], set[int]]:
    """(SQLite's live sentence ids, the committed Tantivy sentence index's ids)."""
    with closing(sqlite3.connect(f"file:{data_dir / 'citeqa.sqlite3'}?mode=ro", uri=True)) as conn:
        live = {r[0] for r in conn.execute("SELECT id FROM sentences WHERE active = 1")}
    return live, indexed_sentence_ids(data_dir / "lexical")


def corrupt_lexical(lexical_dir: Path, how: str) -> None:
    """Delete the lexical index, or garble the mark saying what it applied: either way the
    next open rebuilds it from SQLite."""
    if how == "delete":
        shutil.rmtree(lexical_dir, ignore_errors=True)
    else:
        (lexical_dir / "applied.json").write_text("{torn")


def corrupt_faiss(path: Path, how: str, rng: random.Random) -> None:
    size = path.stat().st_size if path.exists() else 4096
    if how == "delete":
        path.unlink(missing_ok=True)
    elif how == "truncate" and path.exists():  # a torn write: the first half survives
        os.truncate(path, size // 2)
    else:
        path.write_bytes(rng.randbytes(size))


def verify(client: httpx.Client, acked: Acked, search: Sequence[str], in_flight: dict[str, str],
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
                    applied = verify(client, acked, list(acked) if corrupted or last else list(latest),
                                     in_flight, r)
                acked.update(applied)
                r["in_flight_applied"] += len(applied)
                live, on_disk = index_agreement(data_dir)  # nothing written since the start's reconcile
                if live != on_disk:
                    r["index_mismatches"].append(f"life {life}: {len(live)} live sentences, "
                                                 f"{len(on_disk)} in FAISS, {len(live ^ on_disk)} differ")
                # verify's searches waited for the lexical index to apply every change before them
                live, lexical = lexical_agreement(data_dir)
                if live != lexical:
                    r["index_mismatches"].append(f"life {life}: {len(live)} live sentences, "
                                                 f"{len(lexical)} in Tantivy, {len(live ^ lexical)} differ")
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
            corrupt_lexical(data_dir / "lexical", "delete" if len(r["corruptions"]) % 2 else "mark")
            log(f"  FAISS file: {r['corruptions'][-1]}; lexical index damaged too")
        r["cycle_s"].append(round(time.perf_counter() - t0, 2))
    live, on_disk = index_agreement(data_dir) if (data_dir / "citeqa.sqlite3").exists() else (set(), set())
    if live != on_disk:  # after the clean stop (which saves FAISS) too
        r["index_mismatches"].append(f"after shutdown: {len(live)} live, {len(on_disk)} in FAISS")
    if (data_dir / "lexical").exists():  # the clean stop applied the whole log
        live, lexical = lexical_agreement(data_dir)
        if live != lexical:
            r["index_mismatches"].append(f"after shutdown: {len(live)} live, {len(lexical)} in Tantivy")
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
