"""Concurrent questions embedded together: an :class:`~citeqa.index.types.Embedder` that
gathers single-text encodes from many threads into one batch.

One question costs the model about as much as a handful batched together (a forward pass
is mostly fixed cost for short texts), so under many clients the server encodes each
question alone, over and over, on the same two cores. Here every single-text ``encode``
joins a queue that one thread drains: whatever arrived while the previous batch was being
encoded is encoded next, in one call (at most ``max_batch`` texts). Nobody waits for a
batch to fill: a lone caller, with nothing in flight before it, is encoded at once. With
``max_wait_s`` > 0 (0 by default: it measured no faster, docs/SCALING.md), once callers are
seen to overlap, the drainer also waits up to that long for more to join before it encodes.

Encodes of several texts (support scoring, ingest) are the caller's own batch already and
go straight to the wrapped embedder.

Given a ``parse`` (the language pipeline's question parser), ``encode_and_parse`` also parses
the question in the same batch: spaCy's fixed cost per call dominates a short question the way
the model's does (1.7 ms alone, 0.64 ms each in batches of 8, the same tags for all 2,000
SQuAD dev questions), and the drainer's batches are where questions arrive together.

The drainer is the only thread that runs the model for questions, so torch's intra-op
threads are set once for it and never fight a crowd of request threads over the cores.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from citeqa.index.types import Embedder

log = logging.getLogger(__name__)


@dataclass
class _Pending:
    """One caller's text and, once the drainer is done with it, its vector or the error."""

    text: str
    wants_doc: bool = False
    done: threading.Event = field(default_factory=threading.Event)
    vector: np.ndarray | None = None
    doc: Any = None
    error: BaseException | None = None


class EmbedBatcher:
    """``encode([text])`` from many threads at once becomes one ``inner.encode`` of up to
    ``max_batch`` texts. ``max_wait_s`` bounds how long a batch waits for more callers, and
    only once callers have been seen to overlap (a lone client never waits). Results are
    row for row the wrapped embedder's, up to the float noise of padding a text in a batch
    (cosine to the lone encode ≥ 0.99999; tests/index/test_embed_batcher.py)."""

    def __init__(self, inner: Embedder, max_wait_s: float = 0.0, max_batch: int = 16,
                 parse: Callable[[Sequence[str]], Sequence[Any]] | None = None):
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        if max_wait_s < 0:
            raise ValueError("max_wait_s must not be negative")
        self.inner = inner
        self.parse = parse  # questions in, their parses out (index/language.py ``question_docs``)
        self.name = inner.name
        self.dimension = inner.dimension
        self.max_wait_s = max_wait_s
        self.max_batch = max_batch
        self._cond = threading.Condition()
        self._queue: list[_Pending] = []
        self._closed = False
        self._overlapping = False  # the last batch had company: worth waiting for more
        self._thread: threading.Thread | None = None
        # Figures for the curious (GET /metrics could show them): batches and texts encoded.
        self.batches = 0
        self.texts = 0

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if len(texts) != 1:
            return self.inner.encode(texts)
        vector = self._await(_Pending(texts[0])).vector
        assert vector is not None
        return vector[None, :]

    def encode_and_parse(self, text: str) -> tuple[np.ndarray, Any]:
        """One question's vector and its parse, each made in a batch with the other questions
        queued; the parse is None without a ``parse``."""
        if self.parse is None:
            return self.encode([text])[0], None
        pending = self._await(_Pending(text, wants_doc=True))
        assert pending.vector is not None
        return pending.vector, pending.doc

    def _await(self, pending: _Pending) -> _Pending:
        """``pending`` done by the drainer (or here, unbatched, when batching is off or the
        batcher is closed)."""
        with self._cond:
            # Shut down: still answer, unbatched, rather than hang.
            unbatched = self._closed or self.max_batch == 1
            if not unbatched:
                self._queue.append(pending)
                self._start_locked()
                self._cond.notify()
        if unbatched:
            self._run([pending])
        else:
            pending.done.wait()
        if pending.error is not None:
            raise pending.error
        return pending

    def close(self, timeout: float = 10.0) -> None:
        """Encode what is queued, then stop the drainer; later encodes run unbatched."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def __enter__(self) -> "EmbedBatcher":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the drainer ------------------------------------------------------------------------

    def _start_locked(self) -> None:
        if self._thread is None:  # on first use: a batcher never asked costs no thread
            self._thread = threading.Thread(target=self._drain, name="citeqa-embed-batcher", daemon=True)
            self._thread.start()

    def _drain(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            self._encode(batch)

    def _next_batch(self) -> list[_Pending] | None:
        with self._cond:
            while not self._queue and not self._closed:
                self._cond.wait()
            if not self._queue:
                return None  # closed and drained
            # Wait for company only when there has been some: callers queued together now, or
            # the last batch was shared. A lone client finds neither and is encoded at once.
            if self.max_wait_s > 0 and (len(self._queue) > 1 or self._overlapping):
                deadline = time.monotonic() + self.max_wait_s
                while len(self._queue) < self.max_batch and not self._closed:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
            batch = self._queue[:self.max_batch]
            del self._queue[:self.max_batch]
            self._overlapping = len(batch) > 1 or bool(self._queue)
            return batch

    def _encode(self, batch: list[_Pending]) -> None:
        if self._run(batch):
            self.batches += 1
            self.texts += len(batch)

    def _run(self, batch: list[_Pending]) -> bool:
        """Vectors (and the parses asked for) for ``batch``; each caller gets its own or the
        error, and is released. False when the encode failed; a failed parse fails only the
        callers that asked for one."""
        try:
            vectors = self.inner.encode([p.text for p in batch])
            if len(vectors) != len(batch):
                raise RuntimeError(f"the embedder returned {len(vectors)} vectors for {len(batch)} texts")
        except BaseException as exc:  # every waiting caller gets it, and the drainer lives on: nobody hangs
            for p in batch:
                p.error = exc
                p.done.set()
            return False
        parsed = [p for p in batch if p.wants_doc]
        if parsed and self.parse is not None:
            try:
                docs = list(self.parse([p.text for p in parsed]))
                if len(docs) != len(parsed):
                    raise RuntimeError(f"the parser returned {len(docs)} parses for {len(parsed)} texts")
                for p, doc in zip(parsed, docs, strict=True):
                    p.doc = doc
            except BaseException as exc:
                for p in parsed:
                    p.error = exc
        for p, vector in zip(batch, vectors, strict=True):
            p.vector = np.array(vector, dtype=np.float32, copy=True)  # its own row, not a view of the batch
            p.done.set()
        return True
