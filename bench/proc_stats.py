"""What a server process holds, read from /proc (Linux): resident memory, threads, open file
descriptors, and SQLite connections. ``citeqa stress soak`` samples these.

A connection is counted by the write-ahead log it holds open (a database in WAL mode,
like the store's), else by the database file itself (the keys' database). Not by the
database file in WAL mode: SQLite does not close a connection's descriptor on that file
while other connections hold locks on it (closing it would drop their POSIX locks); it
keeps it for the next connection to reuse, so those descriptors count the most connections
there ever were at once, not the ones open now."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

# The embedded store's database (index/embedded_store.py) and the API keys' (api/keys.py).
DATABASE_SUFFIXES = (".sqlite3", ".db")


@dataclass(frozen=True)
class ProcessSample:
    t: float  # seconds since the run started
    rss_mb: float
    threads: int
    fds: int
    db_connections: int

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def sample(pid: int, t: float) -> ProcessSample:
    """One reading of ``pid``; raises ProcessLookupError once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        targets = []
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                targets.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
            except OSError:  # closed between the listing and the readlink
                continue
    except FileNotFoundError:
        raise ProcessLookupError(f"process {pid} is gone") from None
    return ProcessSample(
        t=round(t, 2),
        rss_mb=round(int(fields["VmRSS"].split()[0]) / 1024, 1),
        threads=int(fields["Threads"]),
        fds=len(targets),
        db_connections=sqlite_connections(targets),
    )


def sqlite_connections(targets: list[str]) -> int:
    """Connections among a process's open files (see above)."""
    held = Counter(targets)
    return sum(held[f"{path}-wal"] or n for path, n in held.items() if path.endswith(DATABASE_SUFFIXES))


def listening_pid(port: int) -> int | None:
    """The pid of the local process listening on TCP ``port`` (ours to read: a server run by
    another user is not found)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(f"socket:[{fields[9]}]")
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            if any(os.readlink(fd) in inodes for fd in fd_dir.iterdir()):
                return int(fd_dir.parent.name)
        except OSError:
            continue
    return None
