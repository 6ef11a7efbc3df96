"""One ingest batch's model work on every core: the texts encoded in chunks by workers of one
thread each, and the language analysis as one more task of the same workers.

Why not torch's own threads: on these 2 cores its two intra-op threads encode at ~1.55x the
rate of one (they wait for each other at every operation), while two workers, each encoding
chunks of its own on one thread, reach ~1.75x (1,117 SQuAD dev sentences: 12.3 s against
10.9 s). The analysis (spaCy, ~40% of the encode's CPU) takes a worker while the others
encode, and joins the encode when it is done, so no core waits for the other.

The chunks are the texts sorted by length, longest first, cut at the model's batch size:
the batches (and their padding) are the ones one ``encode`` of all the texts would form,
and the last tasks are the shortest, so the workers finish together.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Protocol, Sequence, runtime_checkable

import numpy as np

CHUNK = 64  # texts per task: the embedder's default batch


@runtime_checkable
class SharesCores(Protocol):
    """An embedder that can leave a core to other work of the process while it encodes."""

    dimension: int

    def encode_beside(self, texts: Sequence[str], busy: Callable[[], bool]) -> np.ndarray: ...


def cores() -> int:
    """The cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def on_every_core(embedder: SharesCores, texts: Sequence[str], workers: int,
                  beside: Callable[[], None] | None = None, chunk: int = CHUNK) -> np.ndarray:
    """The vectors of ``texts`` (in order; the ones ``encode`` gives), computed by ``workers``
    single-threaded workers, with ``beside()`` run by one of them first. An exception of
    any task is raised here, after the tasks not started are cancelled."""
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    vectors = np.empty((len(texts), embedder.dimension), dtype=np.float32)

    def encode(chosen: list[int]) -> None:
        # busy() always true: encode_beside computes on one thread in this worker.
        vectors[chosen] = embedder.encode_beside([texts[i] for i in chosen], _always)

    # torch's thread count is kept per thread, but a thread's first torch call starts from
    # the last count any thread set: the workers' 1 would leak to later threads. The count
    # of the calling thread is set again once they are done (torch is loaded: it encodes).
    torch = sys.modules.get("torch")
    threads = torch.get_num_threads() if torch is not None else None
    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="citeqa-encode") as pool:
            tasks: list[Future[None]] = [pool.submit(beside)] if beside is not None else []
            tasks += [pool.submit(encode, order[start:start + chunk]) for start in range(0, len(order), chunk)]
            try:
                for task in tasks:
                    task.result()
            except BaseException:
                for task in tasks:
                    task.cancel()
                raise
    finally:
        if torch is not None and threads is not None:
            torch.set_num_threads(threads)
    return vectors


def _always() -> bool:
    return True
