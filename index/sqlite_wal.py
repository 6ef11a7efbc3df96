"""Switching a SQLite connection to WAL when other processes may be opening the same file."""

from __future__ import annotations

import sqlite3
import time


def switch_to_wal(db: sqlite3.Connection, attempts: int = 20) -> None:
    """``PRAGMA journal_mode=WAL``, tried again while another process makes the same switch:
    SQLite answers that one "database is locked" at once, without waiting out the busy timeout
    (two ``serve --workers`` opening a new keys.db together: one worker died at start, CI
    session 27). Both the key store and the embedded store open their files this way."""
    for attempt in range(attempts):
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.1)
