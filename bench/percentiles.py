"""Percentiles of measured values: the one definition the benches, the stress runs and
``citeqa eval`` share.

Each figure keeps the method it has always been reported with, so results stay comparable
with the ones already published (docs/EVALUATION.md, docs/SCALING.md, docs/STRESS.md):

- ``linear`` (numpy's default) interpolates between the two nearest values: ``citeqa bench``,
  ``citeqa stress load`` and every median;
- ``nearest`` takes the value at the nearest rank: ``citeqa bench-scale``'s p95;
- ``inverted_cdf`` is the nearest-rank percentile (the smallest value with at least q% of
  the values at or below it; always a measured value): ``citeqa eval``.
"""

from __future__ import annotations

from typing import Literal, Sequence

import numpy as np

Method = Literal["linear", "nearest", "inverted_cdf"]


def percentile(values: Sequence[float], q: float, method: Method = "linear") -> float | None:
    """The ``q``-th percentile (q in 0..100) of ``values``; None when there are none."""
    if not len(values):
        return None
    return float(np.percentile(values, q, method=method))


def percentiles(values: Sequence[float], qs: Sequence[int] = (50, 95), *, prefix: str = "",
                digits: int | None = None, method: Method = "linear") -> dict[str, float | None]:
    """``{f"{prefix}p{q}_ms": value}`` for each q, rounded to ``digits`` when given; None
    for every q when there are no values."""
    figures: dict[str, float | None] = {}
    for q in qs:
        value = percentile(values, q, method)
        if value is not None and digits is not None:
            value = round(value, digits)
        figures[f"{prefix}p{q}_ms"] = value
    return figures
