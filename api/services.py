"""The long-lived parts of a running citeqa, built once from settings and shared by the
HTTP app and the in-process CLI: the composition root, where the flat ``Settings`` become
the settings objects each part of the domain takes."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from citeqa.api.settings import Settings
from citeqa.index.embed_batcher import EmbedBatcher
from citeqa.index.embedded_store import EmbeddedStore
from citeqa.index.embedder import SentenceTransformerEmbedder
from citeqa.index.encode_pool import cores
from citeqa.index.extract import Limits
from citeqa.index.ingest import Ingestor, read_inputs
from citeqa.index.language import Analyzer, shared_analyzer
from citeqa.index.mention_backfill import MentionBackfill, MentionStore
from citeqa.index.retriever import HybridRetriever, RetrievalSettings, for_store
from citeqa.index.scope import Scope
from citeqa.index.scoped_view import ScopedView
from citeqa.index.types import Embedder, Store
from citeqa.qa import registry
from citeqa.qa.answer import AnswerSettings, QuestionAnswerer
from citeqa.qa.ranking.registry import load_reranker
from citeqa.qa.types import Generator

log = logging.getLogger(__name__)

SEEDED_FLAG = "seeded"


def retrieval_settings(settings: Settings, store: object = None) -> RetrievalSettings:
    """``store``: the store searched (whether its searches may run in parallel: for_store)."""
    return for_store(RetrievalSettings(
        fusion=settings.fusion, candidates=settings.candidates, rrf_k=settings.rrf_k,
        dense_weight=settings.dense_weight, lexical_weight=settings.lexical_weight,
        document_weight=settings.document_weight, documents=settings.documents,
    ), store)


def answer_settings(settings: Settings) -> AnswerSettings:
    return AnswerSettings(min_probability=settings.min_probability, min_similarity=settings.min_similarity,
                          rerank_candidates=settings.rerank_candidates, min_support=settings.min_support,
                          attribute_uncited=settings.attribute_uncited,
                          require_asked_kind=settings.require_asked_kind,
                          lead_short_answer_weight=settings.lead_short_answer_weight)


def extraction_limits(settings: Settings) -> Limits:
    """What one uploaded file may cost (POST /v1/documents and ``citeqa ingest`` alike), from
    the settings of the same names."""
    return Limits(max_bytes=settings.max_upload_bytes, max_decompressed_bytes=settings.max_decompressed_bytes,
                  max_pages=settings.max_pdf_pages, max_text_chars=settings.max_text_chars or settings.max_body_bytes)


def open_embedder(settings: Settings) -> Embedder:
    if settings.embedder == "onnx-int8":
        from citeqa.index.onnx_embedder import OnnxInt8Embedder

        return OnnxInt8Embedder(settings.data_dir / "models", settings.model_path, settings.embed_batch_size)
    return SentenceTransformerEmbedder(settings.model_path, settings.embed_batch_size,
                                       precision=settings.embed_precision)


def size_threads(settings: Settings) -> None:
    """torch's thread count, set once, at start, here. torch keeps its count per calling thread
    but starts every new thread from the global set here, so the batcher's thread (the only one
    embedding questions) and ingest's get ``torch_threads``. FAISS needs nothing here: its
    searches (one query each) run on one OpenMP thread, which VectorIndex sets around each
    (index/faiss_index.py), while its builds keep every core."""
    if settings.torch_threads is None and settings.embedder != "torch":
        return  # ONNX Runtime sizes its own; no reason to load torch for it
    import torch

    torch.set_num_threads(settings.torch_threads or cores())


def query_embedder(settings: Settings, embedder: Embedder, analyzer: Analyzer | None = None) -> EmbedBatcher:
    """The embedder of questions: concurrent single-question encodes share one forward pass,
    and, given the analyzer, the questions an answer needs parsed are parsed together too."""
    return EmbedBatcher(embedder, max_wait_s=settings.query_batch_wait_ms / 1000, max_batch=settings.query_batch_max,
                        parse=analyzer.question_docs if analyzer is not None else None)


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
    # spaCy's English pipeline (index/language.py): sentence mentions at ingest, and the one
    # pipeline anything on the query path parses questions with.
    analyzer: Analyzer
    # Mentions for sentences stored without them (ingested with CITEQA_MENTION_ANALYSIS=
    # background, or a data directory from before they were stored): analysed in the
    # background while the service runs, when ingest is quiet.
    backfill: MentionBackfill | None = field(default=None, repr=False)
    # Questions (search, ask, chat) are embedded through this, batched across requests;
    # ``embedder`` itself is ingest's (its own batches) and the bench's raw encode.
    questions: EmbedBatcher | None = field(default=None, repr=False)

    @classmethod
    def open(cls, settings: Settings, embedder: Embedder | None = None,
             extra_generators: dict[str, Generator] | None = None, analyzer: Analyzer | None = None) -> "Services":
        size_threads(settings)  # before the model's first encode
        embedder = embedder or open_embedder(settings)
        analyzer = analyzer or shared_analyzer()  # a missing or wrong pipeline fails here, at start
        store = open_store(settings, embedder.dimension)
        questions = query_embedder(settings, embedder, analyzer)
        retriever = HybridRetriever(store, questions, retrieval_settings(settings, store))
        pool = registry.GeneratorPool(settings.generator, settings.generator_config, extra_generators)
        pool.instance(settings.generator)  # an unknown default fails at start, not on a question
        backfill = MentionBackfill(store, analyzer) if isinstance(store, MentionStore) else None
        # A wrong reranker name, setting or model path fails here, at start.
        reranker = load_reranker(settings.reranker, settings.reranker_config(settings.reranker))
        # Without a backfill (a store that cannot record mentions later) ingest analyses inline.
        ingestor = Ingestor(store, embedder, analyzer, analysis=settings.mention_analysis, listener=backfill)
        services = cls(
            settings=settings, embedder=embedder, store=store, ingestor=ingestor,
            retriever=retriever, generators=pool,
            answerer=QuestionAnswerer(retriever, store, pool, answer_settings(settings), questions, reranker=reranker,
                                      analyzer=analyzer),
            analyzer=analyzer, backfill=backfill, questions=questions,
        )
        if backfill is not None:
            backfill.start()
        return services

    def answerer_for(self, scope: Scope) -> QuestionAnswerer:
        """The answerer of one request: it retrieves, cites and quotes only within ``scope``."""
        return self.answerer.over(ScopedView(self.store, scope))

    def seeds_in(self) -> bool:
        """Whether the seeds need no indexing (already indexed, or none configured): what
        ``seed`` checks, and what the other workers of ``serve --workers`` wait for."""
        seeds_dir = self.settings.seeds_dir
        return bool(self.store.get_flag(SEEDED_FLAG)) or seeds_dir is None or not seeds_dir.is_dir()

    def seed(self) -> int:
        """Index seeds/ once, on the first start of a data directory; later starts (and
        a user who deleted a seed) are left alone. Returns documents ingested."""
        if self.seeds_in():
            return 0
        seeds_dir = self.settings.seeds_dir
        assert seeds_dir is not None  # seeds_in() is True without one
        results = self.ingestor.ingest_many(read_inputs([seeds_dir]))
        self.store.set_flag(SEEDED_FLAG, "1")
        log.info("indexed %d seed document(s) from %s", len(results), seeds_dir)
        return len(results)

    def close(self) -> None:
        if self.backfill is not None:
            self.backfill.stop()  # before the store closes under it
        if self.questions is not None:
            self.questions.close()  # queued questions are encoded first
        self.store.close()
