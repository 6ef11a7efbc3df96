"""Comparing vectors the model made in different batches: equal up to the rounding a batch's
padding brings (index/embedder.py BATCH_NOISE), which bfloat16 makes ~100x larger."""

from __future__ import annotations

import numpy as np

from citeqa.index.embedder import BATCH_NOISE


def min_cosine(embedder: object) -> float:
    """The least cosine between a text's vectors from two batches of ``embedder``."""
    return 1.0 - BATCH_NOISE[getattr(embedder, "precision", "float32")]


def assert_same_vectors(got: np.ndarray, expected: np.ndarray, embedder: object) -> None:
    """Row by row the same vectors, whatever batches each was made in."""
    assert got.shape == expected.shape and got.dtype == expected.dtype == np.float32
    cosines = np.sum(got * expected, axis=1)
    assert cosines.min() >= min_cosine(embedder), (int(cosines.argmin()), float(cosines.min()))
