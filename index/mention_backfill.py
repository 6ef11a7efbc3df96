"""Mentions for sentences stored without them: data directories and databases written before
mentions were stored, and documents ingested with no analyzer.

Such sentences open at once (their mentions column is NULL and reads as none); a running
service then analyses them in the background, a batch per short write transaction, so
searches and ingests go on meanwhile and a restart resumes where it stopped. Analysing at
open instead would hold up the start by the whole collection's analysis (~10 minutes per
million sentences on an idle core).
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol, Sequence, runtime_checkable

from citeqa.index.language import Analyzer
from citeqa.index.types import Mention, Sentence

log = logging.getLogger(__name__)

BATCH = 256  # sentences per read, analysis and write


@runtime_checkable
class MentionStore(Protocol):
    """A store that can say which sentences lack mentions and record them (both SQL stores)."""

    def unanalysed_sentences(self, limit: int, after: int = -1) -> list[Sentence]:
        """Up to ``limit`` sentences stored without analysis, row key above ``after``, by key."""
        ...

    def store_mentions(self, found: Sequence[tuple[Sentence, Sequence[Mention]]]) -> None:
        """Record each sentence's mentions (the sentence as read, for its row key)."""
        ...


def backfill_mentions(store: MentionStore, analyzer: Analyzer, batch: int = BATCH,
                      stop: threading.Event | None = None) -> int:
    """Analyse every sentence stored without mentions; returns how many were done.
    ``stop`` ends it between batches."""
    done, after = 0, -1
    while stop is None or not stop.is_set():
        todo = store.unanalysed_sentences(batch, after)
        if not todo:
            break
        found = analyzer.mentions([s.text for s in todo])
        store.store_mentions(list(zip(todo, found, strict=True)))
        after = todo[-1].key
        done += len(todo)
    return done


class MentionBackfill:
    """:func:`backfill_mentions` in a daemon thread, from ``start`` until done or ``stop``."""

    def __init__(self, store: MentionStore, analyzer: Analyzer, batch: int = BATCH):
        self.store = store
        self.analyzer = analyzer
        self.batch = batch
        self.done = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="citeqa-mention-backfill", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.done = backfill_mentions(self.store, self.analyzer, self.batch, self._stop)
        except Exception:  # the service goes on without the mentions; the next start tries again
            if not self._stop.is_set():
                log.exception("mention backfill stopped")
            return
        if self.done:
            log.info("analysed %d sentence(s) stored without mentions", self.done)

    def stop(self, timeout: float | None = 30.0) -> None:
        """Stop after the batch in hand (the store must stay open until this returns)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the backfill has finished; False on timeout."""
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True
