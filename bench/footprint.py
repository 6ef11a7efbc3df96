"""What a running server costs: its peak memory, and the bytes its index takes per sentence.
A server given by URL is found through /proc (the process listening on its port, and the
data directory it has open)."""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

INDEX_FILES = ("citeqa.sqlite3", "citeqa.sqlite3-wal", "vectors.faiss")


def peak_rss_mb(pid: int) -> float | None:
    """The peak resident memory of process ``pid`` in MB (None if it cannot be read)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def listening_pid(port: int) -> int | None:
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


def open_data_dir(pid: int) -> Path | None:
    """The data directory of the citeqa process ``pid``: where its open citeqa.sqlite3 is."""
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            target = Path(os.readlink(fd))
            if target.name == "citeqa.sqlite3":
                return target.parent
    except OSError:
        pass
    return None


def index_size(data_dir: Path, sentences: int) -> dict[str, Any]:
    """Bytes of the index files, in total and per sentence, as files and as SQLite sees them."""
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
