"""The long-lived parts of a running citeqa, built once from settings and shared by the
HTTP app and the in-process CLI: the composition root, where the flat ``Settings`` become
the settings objects each part of the domain takes."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from citeqa.api.settings import Settings
from citeqa.index.embedded_store import EmbeddedStore
from citeqa.index.embedder import SentenceTransformerEmbedder
from citeqa.index.ingest import Ingestor, read_inputs
from citeqa.index.retriever import HybridRetriever, RetrievalSettings
from citeqa.index.types import Embedder, Store
from citeqa.qa import registry
from citeqa.qa.answer import AnswerSettings, QuestionAnswerer
from citeqa.qa.types import Generator

log = logging.getLogger(__name__)

SEEDED_FLAG = "seeded"


def retrieval_settings(settings: Settings) -> RetrievalSettings:
    return RetrievalSettings(
        fusion=settings.fusion, candidates=settings.candidates, rrf_k=settings.rrf_k,
        dense_weight=settings.dense_weight, lexical_weight=settings.lexical_weight,
        document_weight=settings.document_weight, documents=settings.documents,
    )


def answer_settings(settings: Settings) -> AnswerSettings:
    return AnswerSettings(min_similarity=settings.min_similarity, min_support=settings.min_support,
                          attribute_uncited=settings.attribute_uncited)


def open_embedder(settings: Settings) -> Embedder:
    if settings.embedder == "onnx-int8":
        from citeqa.index.onnx_embedder import OnnxInt8Embedder

        return OnnxInt8Embedder(settings.data_dir / "models", settings.model_path, settings.embed_batch_size)
    return SentenceTransformerEmbedder(settings.model_path, settings.embed_batch_size)


def open_store(settings: Settings, dimension: int) -> Store:
    """The embedded store (SQLite + FAISS in the data directory) unless ``CITEQA_STORE``
    names a database: ``postgresql://...`` selects PostgreSQL + pgvector."""
    url = settings.store.get_secret_value().strip()  # secret: it may hold a password
    if not url:
        return EmbeddedStore(settings.data_dir, dimension, settings.faiss_save_interval_s,
                             max_connections=settings.db_connections)
    if url.startswith(("postgresql://", "postgres://")):
        from citeqa.index.postgres_store import PostgresStore

        return PostgresStore(url, dimension, ef_search=settings.pgvector_ef_search,
                             max_connections=settings.db_connections)
    raise ValueError(f"CITEQA_STORE must be empty (embedded) or a postgresql:// URL, got {url.split(':', 1)[0]}:...")


@dataclass
class Services:
    settings: Settings
    embedder: Embedder
    store: Store
    ingestor: Ingestor
    retriever: HybridRetriever
    generators: registry.GeneratorPool
    answerer: QuestionAnswerer

    @classmethod
    def open(cls, settings: Settings, embedder: Embedder | None = None,
             extra_generators: dict[str, Generator] | None = None) -> "Services":
        embedder = embedder or open_embedder(settings)
        store = open_store(settings, embedder.dimension)
        retriever = HybridRetriever(store, embedder, retrieval_settings(settings))
        pool = registry.GeneratorPool(settings.generator, settings.generator_config, extra_generators)
        pool.instance(settings.generator)  # an unknown default fails at start, not on a question
        return cls(
            settings=settings, embedder=embedder, store=store, ingestor=Ingestor(store, embedder),
            retriever=retriever, generators=pool,
            answerer=QuestionAnswerer(retriever, store, pool, answer_settings(settings), embedder),
        )

    def seed(self) -> int:
        """Index seeds/ once, on the first start of a data directory; later starts (and
        a user who deleted a seed) are left alone. Returns documents ingested."""
        seeds_dir = self.settings.seeds_dir
        if self.store.get_flag(SEEDED_FLAG) or seeds_dir is None or not seeds_dir.is_dir():
            return 0
        results = self.ingestor.ingest_many(read_inputs([seeds_dir]))
        self.store.set_flag(SEEDED_FLAG, "1")
        log.info("indexed %d seed document(s) from %s", len(results), seeds_dir)
        return len(results)

    def close(self) -> None:
        self.store.close()
