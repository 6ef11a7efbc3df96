"""Mentions for sentences stored without them: documents ingested with analysis in the
background (``CITEQA_MENTION_ANALYSIS=background``, the default), data directories and
databases written before mentions were stored, and documents ingested with no analyzer.

Such sentences are searchable at once (their mentions column is NULL and reads as none); a
running service analyses them in the background, a batch per short write transaction, so
searches and ingests go on meanwhile and a restart resumes where it stopped. Analysing at
open instead would hold up the start by the whole collection's analysis (~10 minutes per
million sentences on an idle core). Answers never wait for it: the answer path analyses
the candidates it meets unanalysed on the spot (index/fresh_mentions.py).

The backfill keeps off the ingest's cores: it analyses only once no ingest has run for
``quiet_s`` (an ingest that starts meanwhile stops it at the next batch), so a bulk ingest
encodes on every core and the analysis follows it. Measured (corpus300: 1,285 sentences,
batches of 30 documents interleaved across the variants in one process, 2 cores, load ~4
from other work), ingest vs raw encode / with the analysis done: inline 1.26 / 1.26;
this gate 1.51 / 1.27; the backfill beside the ingest at nice 10, no gate, 1.24 / 1.19
(the niced thread still takes the GIL and the gaps from the encode; at nice 0, 1.37 / 1.30
in an earlier, noisier run). Its thread runs at nice 10 all the same: when it does run,
request threads come first.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from contextlib import contextmanager
from typing import Iterator, Protocol, Sequence, runtime_checkable

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


QUIET_S = 1.0  # no ingest for this long before the backfill analyses: gaps between a client's batches are shorter
NICE = 10  # the backfill thread's niceness: request threads come first when the cores are busy


class MentionBackfill:
    """Analyses the sentences stored without mentions in a daemon thread, from ``start``
    until ``stop``: first what an earlier run left, then whatever ingest stores unanalysed
    (it is told by :meth:`ingest_finished`; index/ingest.py ``IngestListener``)."""

    def __init__(self, store: MentionStore, analyzer: Analyzer, batch: int = BATCH, quiet_s: float = QUIET_S,
                 nice: int = NICE):
        self.store = store
        self.analyzer = analyzer
        self.batch = batch
        self.quiet_s = quiet_s
        self.nice = nice
        self.done = 0  # sentences analysed since start
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._changed = threading.Condition()
        # All below under _changed. A pass is pending at start: rows an earlier run left.
        self._pending = True
        self._working = False
        self._ingests = 0  # ingests in progress
        self._last_ingest = float("-inf")  # time.monotonic() when the last one ended
        self._holds = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="citeqa-mention-backfill", daemon=True)
        self._thread.start()

    # -- what ingest tells it (index/ingest.py IngestListener) --

    def ingest_started(self) -> None:
        with self._changed:
            self._ingests += 1

    def ingest_finished(self, unanalysed: int) -> None:
        """An ingest ended, having stored ``unanalysed`` sentences without mentions."""
        with self._changed:
            self._ingests -= 1
            self._last_ingest = time.monotonic()
            if unanalysed:
                self._pending = True
            self._changed.notify_all()

    @contextmanager
    def held(self) -> Iterator[None]:
        """No analysis while inside (after the batch in hand): a bench holds it through a
        measured ingest, a test to see answers made before any analysis."""
        with self._changed:
            self._holds += 1
        try:
            yield
        finally:
            with self._changed:
                self._holds -= 1
                self._changed.notify_all()

    # -- the thread --

    def _run(self) -> None:
        _lower_priority(self.nice)
        while self._next_pass():
            try:
                found = self._pass()
            except Exception:  # the service goes on without the mentions; the next wake tries again
                if not self._stop.is_set():
                    log.exception("mention backfill failed; retried on the next ingest or start")
                found = 0
            with self._changed:
                self._working = False
                self._changed.notify_all()
            if found:
                log.info("analysed %d sentence(s) stored without mentions", found)

    def _next_pass(self) -> bool:
        """Wait until a pass is due; False once stopped."""
        with self._changed:
            while not self._pending and not self._stop.is_set():
                self._changed.wait()
            self._pending, self._working = False, not self._stop.is_set()
            return self._working

    def _pass(self) -> int:
        """Every sentence stored without mentions, from the first (a concurrent writer's rows
        may land below an earlier pass's last key), a batch at a time, each when ingest is quiet."""
        found, after = 0, -1
        while self._quiet():
            todo = self.store.unanalysed_sentences(self.batch, after)
            if not todo:
                break
            mentions = self.analyzer.mentions([s.text for s in todo])
            self.store.store_mentions(list(zip(todo, mentions, strict=True)))
            after = todo[-1].key
            found += len(todo)
            self.done += len(todo)
        return found

    def _quiet(self) -> bool:
        """Wait until no ingest has run for ``quiet_s`` and nothing holds the backfill; False once stopped."""
        with self._changed:
            while not self._stop.is_set():
                if self._ingests == 0 and self._holds == 0:
                    left = self._last_ingest + self.quiet_s - time.monotonic()
                    if left <= 0:
                        return True
                    self._changed.wait(left)
                else:
                    self._changed.wait()
            return False

    def stop(self, timeout: float | None = 30.0) -> None:
        """Stop after the batch in hand (the store must stay open until this returns)."""
        with self._changed:
            self._stop.set()
            self._changed.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until nothing is left to analyse (as far as it was told) or the thread has
        ended; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while self._pending or self._working:
                if self._thread is None or not self._thread.is_alive():
                    return not self._working
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                # Polled too: a thread that died between two notifications must not hang this.
                self._changed.wait(1.0 if left is None else min(left, 1.0))
            return True


def _lower_priority(nice: int) -> None:
    """Renice the calling thread (Linux: a thread is a task of its own); nothing elsewhere."""
    if not nice or not hasattr(os, "setpriority") or not hasattr(threading, "get_native_id"):
        return
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
    except OSError:  # not permitted, or no per-thread priorities here: run as it is
        pass
