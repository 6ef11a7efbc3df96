"""The torch embedder in bfloat16 (autocast) against float32: the same vectors to within
rounding, the same nearest sentences, and ``auto`` choosing by what the CPU computes natively."""

from __future__ import annotations

import re

import numpy as np
import pytest

from citeqa.api.services import open_embedder
from citeqa.api.settings import Settings
from citeqa.index.embedder import SentenceTransformerEmbedder, native_bfloat16, resolve_precision
from tests.support.corpus import SEEDS_DIR

QUESTIONS = [
    "how many troops did north korea send",
    "who is the russian ambassador to pyongyang",
    "was the treatment free",
    "where are the north korean workers sent",
    "which cities will get korean teachers",
]


@pytest.fixture(scope="module")
def seed_sentences() -> list[str]:
    text = "\n".join(p.read_text(encoding="utf-8") for p in sorted(SEEDS_DIR.glob("*.txt")))
    return [s for s in re.split(r"(?<=[.!?])\s+", text) if len(s.split()) > 3]


@pytest.fixture(scope="module")
def both() -> tuple[SentenceTransformerEmbedder, SentenceTransformerEmbedder]:
    return SentenceTransformerEmbedder(precision="float32"), SentenceTransformerEmbedder(precision="bfloat16")


def test_bfloat16_vectors_are_float32_unit_vectors_within_rounding_of_float32(both, seed_sentences):
    full, half = both
    assert (full.precision, half.precision) == ("float32", "bfloat16")
    a, b = full.encode(seed_sentences), half.encode(seed_sentences)
    assert b.dtype == np.float32 and b.flags["C_CONTIGUOUS"] and b.shape == a.shape
    np.testing.assert_allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    cosines = (a * b).sum(axis=1)
    assert cosines.min() > 0.9995, cosines.min()
    assert not np.array_equal(a, b)  # the products really ran in bfloat16


def test_bfloat16_questions_find_the_same_nearest_sentences(both, seed_sentences):
    full, half = both
    corpus = full.encode(seed_sentences)  # an index built in float32, searched in either
    for question in QUESTIONS:
        by_full = np.argsort(-(corpus @ full.encode([question])[0]))[:3]
        by_half = np.argsort(-(corpus @ half.encode([question])[0]))[:3]
        assert by_full[0] == by_half[0], question
        assert set(by_full) == set(by_half), question


def test_auto_is_bfloat16_only_where_the_cpu_computes_it_natively():
    assert resolve_precision("auto") == ("bfloat16" if native_bfloat16() else "float32")
    assert resolve_precision("float32") == "float32"
    assert resolve_precision("bfloat16") == "bfloat16"
    with pytest.raises(ValueError, match="unknown embedding precision 'half'"):
        resolve_precision("half")  # type: ignore[arg-type]


def test_the_setting_reaches_the_services_embedder(monkeypatch, tmp_path):
    monkeypatch.setenv("CITEQA_EMBED_PRECISION", "float32")
    assert open_embedder(Settings(data_dir=tmp_path)).precision == "float32"  # type: ignore[attr-defined]
    monkeypatch.setenv("CITEQA_EMBED_PRECISION", "half")
    with pytest.raises(ValueError, match="embed_precision"):
        Settings(data_dir=tmp_path)


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_a_batch_is_encoded_bit_for_bit_as_sentence_transformers_encodes_it(both, seed_sentences, precision):
    """The one-batch path (tokenise, forward, normalise) skips ``SentenceTransformer.encode``'s
    per-call work but none of its steps: its vectors are the library's own, in either precision."""
    embedder = both[0] if precision == "float32" else both[1]
    texts = QUESTIONS + seed_sentences[:11]
    for batch in (texts[:1], texts[:4], texts):
        with embedder._computing():
            library = embedder._model.encode(batch, normalize_embeddings=True, convert_to_numpy=True,
                                             show_progress_bar=False)
        np.testing.assert_array_equal(embedder.encode(batch), library)
