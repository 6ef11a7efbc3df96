"""What a running server costs: its peak memory, and the bytes its index takes per sentence.
A server given by URL is found through /proc (the process listening on its port:
bench/proc_stats.py, and the data directory it has open)."""

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
