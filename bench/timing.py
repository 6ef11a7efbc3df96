"""Small timing helpers of the benches: milliseconds since a start, a call timed, a ratio."""

from __future__ import annotations

import time
from typing import Any, Callable


def ms_since(t0: float) -> float:
    """Milliseconds since ``t0`` (a ``time.perf_counter()`` reading)."""
    return (time.perf_counter() - t0) * 1000


def timed_s(fn: Callable[..., Any], *args: Any) -> float:
    """Seconds one call of ``fn(*args)`` took."""
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def timed_ms(fn: Callable[..., Any], *args: Any) -> float:
    return timed_s(fn, *args) * 1000


def ratio(a: float | None, b: float | None) -> float | None:
    """a / b to 3 decimals; None when either is missing or zero."""
    return round(a / b, 3) if a and b else None
