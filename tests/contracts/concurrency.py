"""Running calls at the same moment, from threads of their own: how the contracts (and
the tests of each backend) race writers and readers against each other."""

from __future__ import annotations

import threading
from typing import Any, Callable, TypeVar

T = TypeVar("T")


def run_at_once(calls: list[Callable[[], T]], timeout_s: float = 60) -> list[T]:
    """Run each call in a thread of its own, all released together; their results in
    order. The first exception any of them raised is raised here."""
    start = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            start.wait(timeout=timeout_s)
            results[n] = calls[n]()
        except BaseException as exc:  # noqa: BLE001 - raised by the caller's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=timeout_s)
    assert not any(t.is_alive() for t in threads), "a call did not finish in time"
    if errors:
        raise errors[0]
    return results
