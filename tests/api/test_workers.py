"""``citeqa serve --workers 2`` as a real process tree: two workers on one embedded data
directory, reached over HTTP, each connection pinned to one worker.

What only several processes show: a document acknowledged by one worker is searchable from
the other at once (SQLite's data_version moves FAISS, the Tantivy owner commits and the
other reloads), deletes likewise; the seeds are indexed once; a killed worker is started
again; SIGTERM lets a request in flight finish and stops every worker.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

from citeqa.bench.service import process_of, wait_for_workers
from tests.support.servers import Server, serving

pytestmark = pytest.mark.slow

SEED_LOG_LINE = "seed document(s)"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with serving(tmp_path_factory.mktemp("workers"), env={"CITEQA_WORKERS": "2"}) as srv:
        wait_for_workers(srv.url, 2, timeout_s=300)
        yield srv


def pinned_clients(server: Server, workers: int = 2, tries: int = 60) -> dict[int, httpx.Client]:
    """One keep-alive client per worker pid: a client's one connection stays with the worker
    that accepted it."""
    found: dict[int, httpx.Client] = {}
    for _ in range(tries):
        client = httpx.Client(base_url=server.url, timeout=60, limits=httpx.Limits(max_connections=1))
        pid = process_of(client)
        if pid in found:
            client.close()
        else:
            found[pid] = client
        if len(found) == workers:
            return found
    for c in found.values():
        c.close()
    pytest.fail(f"fewer than {workers} workers answered {tries} new connections: {sorted(found)}")


def hits_for(client: httpx.Client, query: str) -> list[str]:
    r = client.post("/v1/search", json={"query": query, "top_k": 5})
    assert r.status_code == 200, r.text
    return [h["doc_id"] for h in r.json()["hits"]]


def test_seeds_are_indexed_once_and_every_worker_serves(server):
    assert server.log().count(SEED_LOG_LINE) == 1, server.log()
    clients = pinned_clients(server)
    try:
        counts = set()
        for pid, client in clients.items():
            assert process_of(client) == pid  # the connection stayed with its worker
            r = client.get("/readyz")
            assert r.status_code == 200, r.text
            counts.add(r.json()["sentences"])
        assert len(counts) == 1 and counts.pop() > 0  # one store, the same for both
    finally:
        for c in clients.values():
            c.close()


def test_a_write_acknowledged_by_one_worker_is_read_by_the_other_at_once(server):
    clients = pinned_clients(server)
    try:
        writers = list(clients.items())
        for round_ in range(4):  # each worker writes twice; the other reads at once
            (writer_pid, writer), (reader_pid, reader) = writers[round_ % 2], writers[1 - round_ % 2]
            word = f"zq{uuid.uuid4().hex[:10]}"  # a word no other document holds
            doc_id = f"cross-{round_}-{word}"
            text = (f"The harbour of {word} was rebuilt in 1911 by the river authority. "
                    f"Ships bound for {word} unload timber and grain there.")
            r = writer.post("/v1/documents", json={"doc_id": doc_id, "title": f"Harbour {word}", "text": text})
            assert r.status_code == 201, r.text
            assert process_of(writer) == writer_pid and process_of(reader) == reader_pid
            assert doc_id in hits_for(reader, f"Where do ships bound for {word} unload?"), (writer_pid, reader_pid)
            assert doc_id in hits_for(writer, f"When was the harbour of {word} rebuilt?")

            deleter, other = (reader, writer) if round_ % 2 else (writer, reader)
            assert deleter.delete(f"/v1/documents/{doc_id}").status_code == 204
            assert doc_id not in hits_for(other, f"Where do ships bound for {word} unload?")
            assert other.get(f"/v1/documents/{doc_id}").status_code == 404
    finally:
        for c in clients.values():
            c.close()


def _connect_together(client: httpx.Client, start: threading.Barrier, pids: list[int]) -> None:
    start.wait()
    pids.append(process_of(client))  # the connection is made here, and kept


def test_clients_that_connect_together_are_shared_evenly_between_the_workers(server):
    """Four keep-alive clients connecting at once: two in each worker, every time (before
    api/connection_balance.py, all four often landed in one worker and shared its core)."""
    wait_for_workers(server.url, 2, timeout_s=60)
    for _ in range(3):
        time.sleep(0.5)  # the connections closed before are counted off by their workers first
        start = threading.Barrier(4)
        clients = [httpx.Client(base_url=server.url, timeout=60, limits=httpx.Limits(max_connections=1))
                   for _ in range(4)]
        pids: list[int] = []

        threads = [threading.Thread(target=_connect_together, args=(c, start, pids)) for c in clients]
        try:
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            assert sorted(pids.count(p) for p in set(pids)) == [2, 2], pids
        finally:
            for c in clients:
                c.close()


def test_a_killed_worker_is_started_again(server):
    before = wait_for_workers(server.url, 2, timeout_s=60)
    victim = sorted(before)[0]
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        now = set(server.children())
        if victim not in now and len(now - before) >= 1:
            break
        time.sleep(0.5)
    else:
        pytest.fail(f"no new worker after killing {victim}:\n{server.log()}")
    after = wait_for_workers(server.url, 2, timeout_s=300)
    assert victim not in after and len(after) == 2
    assert "exited with -9" in server.log()


def test_sigterm_finishes_a_request_in_flight_and_stops_every_worker(tmp_path):
    srv = Server(tmp_path / "data", tmp_path, env={"CITEQA_WORKERS": "2", "CITEQA_SEEDS_DIR": ""})
    try:
        srv.start()
        workers = wait_for_workers(srv.url, 2, timeout_s=300)
        assert workers <= set(srv.children())  # (beside them: multiprocessing's resource tracker)
        # A request whose body arrives slowly is in flight when the signal comes.
        answered: list[int] = []

        def slow_body():
            yield b'{"query": "'
            time.sleep(1.5)
            yield b'harbour"}'

        def ask() -> None:
            with httpx.Client(base_url=srv.url, timeout=60) as c:
                answered.append(c.post("/v1/search", content=slow_body(),
                                       headers={"content-type": "application/json"}).status_code)

        t = threading.Thread(target=ask)
        t.start()
        time.sleep(0.5)
        assert srv.proc is not None
        srv.proc.send_signal(signal.SIGTERM)
        t.join(60)
        assert answered == [200], srv.log()
        assert srv.stop(timeout=60) == 0, srv.log()
        for pid in workers:
            assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
        assert srv.log().count("Application shutdown complete") == 2, srv.log()
    finally:
        srv.kill_quietly()
    assert "Traceback" not in srv.log(), srv.log()


# -- the supervisor alone, with stand-in workers (no model: fast) -----------------------------


def idle_worker(settings, sockets, number, ready, parent, connections) -> None:
    """Says it is ready, then waits for SIGTERM; records its pid and its torch threads."""
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    Path(settings.data_dir, f"worker-{number}-{os.getpid()}").write_text(str(settings.torch_threads))
    ready.send(number)
    stopped.wait(120)


def broken_worker(settings, sockets, number, ready, parent, connections) -> None:
    raise SystemExit(3)


def broken_first_worker_beside_a_stubborn_one(settings, sockets, number, ready, parent, connections) -> None:
    """Worker 0 fails on start; worker 1 ignores SIGTERM and never becomes ready (as one
    waiting for worker 0's seeds does)."""
    if number == 0:
        raise SystemExit(3)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(300)


def _pids(folder: Path) -> dict[int, set[int]]:
    found: dict[int, set[int]] = {}
    for f in folder.glob("worker-*-*"):
        _, number, pid = f.name.split("-")
        found.setdefault(int(number), set()).add(int(pid))
    return found


def _supervise_in_main_thread(supervisor, until, timeout_s: float = 120):
    """Run the supervisor here (signal handlers need the main thread) until ``until()``;
    then SIGTERM this process, as a service manager would."""
    def watch() -> None:
        deadline = time.monotonic() + timeout_s
        while not until() and time.monotonic() < deadline:
            time.sleep(0.1)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, daemon=True).start()
    return supervisor.run()


def test_the_supervisor_restarts_a_dead_worker_and_stops_all_on_sigterm(tmp_path):
    from citeqa.api.settings import Settings
    from citeqa.api.workers import Supervisor

    settings = Settings(data_dir=tmp_path, seeds_dir=None)
    supervisor = Supervisor(settings, [], 2, target=idle_worker, stop_timeout_s=30)
    killed: list[int] = []

    def kill_one_then_wait_for_its_successor() -> bool:
        pids = _pids(tmp_path)
        if not killed and len(pids) == 2 and all(pids.values()):
            killed.append(min(pids[0]))
            os.kill(killed[0], signal.SIGKILL)
        return bool(killed) and len(pids.get(0, ())) == 2

    assert _supervise_in_main_thread(supervisor, kill_one_then_wait_for_its_successor) == 0
    pids = _pids(tmp_path)
    assert supervisor.restarts == 1 and len(pids[0]) == 2 and len(pids[1]) == 1
    for pid in pids[0] | pids[1]:  # every worker is gone, reaped
        assert not Path(f"/proc/{pid}").exists()
    # Two workers share the usable cores: each gets its part of them for torch.
    threads = {int(f.read_text()) for f in tmp_path.glob("worker-*")}
    assert threads == {max(1, len(os.sched_getaffinity(0)) // 2)}


def test_a_worker_that_never_becomes_ready_stops_the_supervisor_with_its_code(tmp_path):
    from citeqa.api.settings import Settings
    from citeqa.api.workers import Supervisor

    supervisor = Supervisor(Settings(data_dir=tmp_path, seeds_dir=None), [], 2, target=broken_worker)
    started = time.monotonic()
    assert supervisor.run() == 3
    assert time.monotonic() - started < 60 and supervisor.restarts == 0


def test_a_worker_that_is_not_ready_does_not_hold_up_the_stop(tmp_path):
    from citeqa.api.settings import Settings
    from citeqa.api.workers import NOT_READY_STOP_S, Supervisor

    supervisor = Supervisor(Settings(data_dir=tmp_path, seeds_dir=None), [], 2,
                            target=broken_first_worker_beside_a_stubborn_one, stop_timeout_s=120)
    started = time.monotonic()
    assert supervisor.run() == 3
    # Killed after the short grace, not the 120 s a serving worker would get.
    assert time.monotonic() - started < NOT_READY_STOP_S + 60
