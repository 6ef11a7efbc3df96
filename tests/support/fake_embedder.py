"""A deterministic stand-in for the embedding model: hashed bag-of-words vectors.

Each word (lower-cased ``\\w+``) adds +1 or -1 to one of ``dimension`` coordinates, both
chosen by a hash of the word; the sum is L2-normalised. Texts that share words have a
positive cosine, a text's own vector has cosine 1 with itself, and texts with no word
in common are near 0, so dense search still finds the sentence that shares words with
the query. No model to load: a store's contract runs in seconds on it.
"""

from __future__ import annotations

import hashlib
import re
from typing import Sequence

import numpy as np

_WORD = re.compile(r"\w+")

# The real model's width, so one store can take either model's vectors.
DIMENSION = 384


class FakeEmbedder:
    """An :class:`citeqa.index.types.Embedder`; the same text always gets the same vector
    (in every process: the hash is sha256, not Python's salted ``hash``)."""

    name = "fake-bag-of-words"

    def __init__(self, dimension: int = DIMENSION):
        self.dimension = dimension

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            # A text without words gets the vector of the empty word: still unit length.
            for word in _WORD.findall(text.lower()) or [""]:
                digest = hashlib.sha256(word.encode("utf-8", "surrogatepass")).digest()
                slot = int.from_bytes(digest[:4], "little") % self.dimension
                vectors[row, slot] += 1.0 if digest[4] & 1 else -1.0
            norm = np.linalg.norm(vectors[row])
            if norm == 0:  # the words cancelled out (+1 and -1 in one slot)
                vectors[row, 0] = 1.0
            else:
                vectors[row] /= norm
        return vectors
