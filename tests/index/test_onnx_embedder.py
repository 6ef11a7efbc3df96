"""The int8 ONNX embedder: same model, close vectors, cached export, real retrieval."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="needs the [onnx] extra: pip install -e '.[onnx]'")

from citeqa.index.embedded_store import EmbeddedStore  # noqa: E402
from citeqa.index.ingest import Ingestor, read_inputs  # noqa: E402
from citeqa.index.onnx_embedder import OnnxInt8Embedder  # noqa: E402
from citeqa.index.retriever import HybridRetriever  # noqa: E402
from tests.support.corpus import SEEDS_DIR, TROOPS_QUESTION

TEXTS = ["How many troops did North Korea send?", "Kim Jong Un dispatched 11,000 elite troops.",
         "The Eiffel Tower is 330 metres tall.", "Café crème — 東京 😀", ""]


@pytest.fixture(scope="module")
def onnx(tmp_path_factory):
    return OnnxInt8Embedder(tmp_path_factory.mktemp("models"))


def test_vectors_are_normalised_and_close_to_the_torch_model(onnx, embedder):
    a, b = onnx.encode(TEXTS), embedder.encode(TEXTS)
    assert a.shape == b.shape == (len(TEXTS), 384) and a.dtype == np.float32
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-3)
    assert (a * b).sum(1).min() > 0.9  # int8 weights: close, not equal
    # Dynamic quantisation scales activations per batch, so a text's vector depends a
    # little on its batch companions: close, not identical.
    assert float(onnx.encode(TEXTS[:1])[0] @ a[0]) > 0.98
    assert onnx.encode([]).shape == (0, 384)


def test_the_export_is_made_once_and_reused(tmp_path):
    first = OnnxInt8Embedder(tmp_path)
    [made] = list(tmp_path.glob("*-int8.onnx"))
    stamp = made.stat().st_mtime_ns
    second = OnnxInt8Embedder(tmp_path)
    assert made.stat().st_mtime_ns == stamp and list(tmp_path.iterdir()) == [made]
    assert np.allclose(first.encode(TEXTS), second.encode(TEXTS))


def test_retrieval_with_the_onnx_embedder_finds_the_answer(onnx, tmp_path):
    store = EmbeddedStore(tmp_path / "data", onnx.dimension)
    try:
        Ingestor(store, onnx).ingest_many(read_inputs([SEEDS_DIR]))
        hits = HybridRetriever(store, onnx).search(TROOPS_QUESTION, 3)
        assert any("11,000 to 12,000" in h.sentence.text for h in hits[:2])
    finally:
        store.close()
