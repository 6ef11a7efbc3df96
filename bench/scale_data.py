"""What ``citeqa bench-scale`` stores: the real sentences of the evaluation corpus (embedded
by the real model as ingest embeds them, title first; cached), then synthetic documents of
real sentence texts reused, with clustered synthetic vectors (a Gaussian blob around each of
a number of random centres, normalised, as in docs/scripts/faiss_recall.py)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import numpy as np

from citeqa.index.ingest import content_version, embedding_text
from citeqa.index.sentences import split_sentences
from citeqa.index.types import Document, Embedder, Sentence

SENTENCES_PER_DOCUMENT = 8  # synthetic documents (SQuAD paragraphs hold ~5 sentences)
SPREAD = 0.06  # per-coordinate noise of the synthetic blobs
# Every document's metadata holds a "shard" in 0..SHARDS-1 (round robin by position), so a
# filter on one shard (FILTER) admits 1% of the documents, spread over the whole corpus.
SHARDS = 100
FILTER: dict[str, Any] = {"shard": 7}

Log = Callable[[str], None]


@dataclass
class RealCorpus:
    documents: list[tuple[Document, list[Sentence]]]
    vectors: list[np.ndarray]  # per document, one row per sentence
    questions: list[str]
    question_vectors: np.ndarray


def load_real(corpus: Path, questions: Path, n_questions: int, cache_dir: Path, log: Log,
              embedder: Optional[Embedder] = None) -> RealCorpus:
    """The corpus split as ingest splits it, every 10th question (up to ``n_questions``), and
    their vectors (from ``cache_dir`` when this corpus and these questions were embedded before)."""
    docs = []
    for number, line in enumerate(corpus.read_text(encoding="utf-8").splitlines()):
        row = json.loads(line)
        title, text = row.get("title", ""), row["text"]
        metadata: dict[str, Any] = {"shard": number % SHARDS}
        version = content_version(title, text, metadata)
        doc = Document(doc_id=row["doc_id"], version=version, text=text, title=title, metadata=metadata)
        sentences = [Sentence(doc.doc_id, version, i, s.start, s.end, text[s.start:s.end])
                     for i, s in enumerate(split_sentences(text))]
        docs.append((doc, sentences))
    asked = [json.loads(line)["question"] for line in questions.read_text(encoding="utf-8").splitlines()]
    # Every 10th question: spread over the corpus rather than its first articles.
    asked = asked[::10][:n_questions]
    digest = hashlib.sha256(corpus.read_bytes() + json.dumps(asked).encode()).hexdigest()[:12]
    cache = cache_dir / f"scale-real-{digest}.npz"
    if cache.exists():
        saved = np.load(cache)
        flat, question_vectors = saved["sentences"], saved["questions"]
    else:
        if embedder is None:
            from citeqa.index.embedder import SentenceTransformerEmbedder

            embedder = SentenceTransformerEmbedder()
        texts = [embedding_text(doc.title, s.text) for doc, sentences in docs for s in sentences]
        log(f"embedding {len(texts):,} real sentences and {len(asked)} questions (cached in {cache})")
        flat, question_vectors = embedder.encode(texts), embedder.encode(asked)
        cache_dir.mkdir(parents=True, exist_ok=True)
        np.savez(cache, sentences=flat, questions=question_vectors)
    vectors, at = [], 0
    for _, sentences in docs:
        vectors.append(flat[at:at + len(sentences)])
        at += len(sentences)
    return RealCorpus(docs, vectors, asked, question_vectors)


class ClusteredVectors:
    """Synthetic sentence vectors: a blob around each of ``centres`` random unit vectors."""

    def __init__(self, dimension: int, centres: int, seed: int = 0):
        self.rng = np.random.default_rng(seed)
        self.centres = _normalise(self.rng.standard_normal((max(1, centres), dimension), dtype=np.float32))

    def draw(self, n: int) -> np.ndarray:
        pick = self.rng.integers(0, len(self.centres), n)
        noise = SPREAD * self.rng.standard_normal((n, self.centres.shape[1]), dtype=np.float32)
        return _normalise(self.centres[pick] + noise)


def _normalise(x: np.ndarray) -> np.ndarray:
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x, dtype=np.float32)


def synthetic_documents(real: RealCorpus, first: int, count: int, vectors: ClusteredVectors
                        ) -> Iterator[tuple[Document, list[Sentence], np.ndarray]]:
    """Documents ``first .. first+count-1`` of real sentence texts in a new order, so the
    lexical indexes see real words at real frequencies."""
    texts = [(doc.title, s.text) for doc, sentences in real.documents for s in sentences]
    for number in range(first, first + count):
        picks = [texts[(number * 7919 + j * 104729) % len(texts)] for j in range(SENTENCES_PER_DOCUMENT)]
        title = picks[0][0]
        spans, parts, at = [], [], 0
        for _, sentence in picks:
            spans.append((at, at + len(sentence)))
            parts.append(sentence)
            at += len(sentence) + 1
        text = " ".join(parts)
        doc_id = f"synthetic:{number}"
        metadata = {"shard": number % SHARDS}
        version = content_version(title, text, metadata)
        doc = Document(doc_id=doc_id, version=version, text=text, title=title, metadata=metadata)
        sentences = [Sentence(doc_id, version, i, start, end, text[start:end]) for i, (start, end) in enumerate(spans)]
        yield doc, sentences, vectors.draw(len(sentences))
