"""All configuration in one object, read from CITEQA_* environment variables (or a .env
file) at the entry point and passed in; nothing deeper reads the environment.

This module depends on pydantic and the standard library only: the domain's own settings
objects (retrieval, answering, security) are built from it at the composition root
(api/services.py, api/app.py), so configuration can be loaded, printed and checked without
importing the model, the stores or the generators."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def package_dir(package: str) -> Path:
    """The directory of an installed package's data (``citeqa.seeds``, ``citeqa.prompts``):
    the same in an editable checkout and in an installed wheel, whatever the cwd."""
    root = files(package)
    if not isinstance(root, Path):  # a zipped install: the seeds and prompts must be real files
        raise RuntimeError(f"{package} is not installed as files on disk ({root!r})")
    return root


def packaged_seeds() -> Path:
    return package_dir("citeqa.seeds")


def packaged_prompts() -> Path:
    return package_dir("citeqa.prompts")


# Rerankers whose settings are fields of their own (CITEQA_CROSS_ENCODER_PATH, ...).
_BUILT_IN_RERANKERS = ("learned", "cross-encoder")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CITEQA_", env_file=".env", extra="ignore")

    data_dir: Path = Field(Path("data"), description="SQLite database and FAISS index live here.")
    store: SecretStr = Field(SecretStr(""), description=(
        "Empty: the embedded store in data_dir. postgresql://user@host:port/db: PostgreSQL + pgvector, "
        "shared by stateless replicas."))
    pgvector_ef_search: int = Field(64, ge=1, le=1000, description=(
        "pgvector's hnsw.ef_search floor: 64 keeps recall@10 0.963 on SQuAD questions at 1M sentences; 256 "
        "matches the embedded FAISS's recall at ~4x the dense search cost (docs/SCALING.md)."))
    seeds_dir: Path | None = Field(default_factory=packaged_seeds, description=(
        "Indexed on first start; default: the packaged seeds; empty to skip."))
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = Field(1, ge=1, le=64, description=(
        "citeqa serve: processes serving the same sockets, each with its own model, batcher and caches "
        "(api/workers.py). Requests are Python under one lock per process: a second process uses a second "
        "core. Rate-limit buckets of the embedded store's keys, kept /v1/responses and /metrics are per "
        "process."))

    model_path: Path | None = Field(None, description=(
        "A sentence-transformers model directory; default: the packaged all-MiniLM-L6-v2."))
    embed_batch_size: int = 64
    embedder: Literal["torch", "onnx-int8"] = Field("torch", description=(
        "onnx-int8: the same model on ONNX Runtime with int8 weights (faster; re-ingest when switching)."))
    embed_precision: Literal["auto", "float32", "bfloat16"] = Field("auto", description=(
        "The torch embedder's matrix products: auto is bfloat16 on a CPU that computes it in hardware "
        "(AVX512-BF16 or AMX; 1.5-1.8x faster here, vectors within cosine 4e-5 of float32's, no re-ingest "
        "needed) and float32 elsewhere, where bfloat16 is emulated and slower (index/embedder.py)."))
    # Concurrent questions share the model (index/embed_batcher.py, docs/SCALING.md "Many clients").
    query_batch_max: int = Field(16, ge=1, le=256, description=(
        "Questions embedded together in one forward pass when requests overlap; 1 turns batching off. Per "
        "question, a batch of 16 cost about half a lone encode here, one of 32 three quarters; a batched "
        "question's vector equals its lone one to cosine 1 - 1.2e-7 in float32, 1 - 1.3e-5 in bfloat16 "
        "(padding noise)."))
    query_batch_wait_ms: float = Field(0.0, ge=0, le=50, description=(
        "How long a batch of questions may wait for more to join, only once requests have been seen to "
        "overlap (a lone client's question is encoded at once, never delayed). 0: no wait; a batch is what "
        "queued while the previous one was encoded, which measured as fast as a 2 ms wait or faster at "
        "16 clients (docs/SCALING.md)."))
    mention_analysis: Literal["background", "inline"] = Field("background", description=(
        "When a new document's sentences get their entities, noun chunks and roles (spaCy): background: "
        "after it is stored and acknowledged, by the backfill once no ingest has run for a second (ingest "
        "encodes on every core; answers analyse candidates not reached yet on the spot, so they do not "
        "change); inline: beside the encode, before the document is acknowledged."))
    torch_threads: int | None = Field(None, ge=1, le=256, description=(
        "torch threads for the query and ingest encodes; default: the usable cores (with several workers, "
        "the usable cores shared among them). Only the batcher's one thread embeds questions, so these never "
        "multiply by the request threads."))

    default_top_k: int = Field(5, ge=1)
    max_top_k: int = Field(100, ge=1)
    fusion: Literal["blend", "rrf"] = "blend"
    candidates: int = Field(50, ge=1, description="Candidates per retriever before fusion.")
    dense_weight: float = Field(0.7, description="blend: weight of the cosine similarity.")
    lexical_weight: float = Field(0.2, description="blend: weight of sentence BM25 (normalised by the best).")
    document_weight: float = Field(0.3, description="blend: weight of the document's BM25 (title + text).")
    documents: int = Field(5, ge=0, description=(
        "blend: sentences of this many best-matching documents join the candidates."))
    rrf_k: int = 60
    min_probability: float | None = Field(None, ge=0, le=1, description=(
        "Abstain when the best-ranked sentence's probability of answering is under this; default: the "
        "reranker's own threshold (the learned ranker's, chosen on SQuAD dev 1-1000 with 20% negatives, is in "
        "qa/ranking/learned_ranker.json), 0.5 for a reranker without one."))
    min_similarity: float = Field(0.2, description=(
        "Abstain also when no retrieved sentence has this cosine to the question and none holds the question's "
        "key word (its longest content word): a floor for unrelated collections (no SQuAD dev question's best "
        "cosine is under 0.25); the gate is the reranker's probability."))
    rerank_candidates: int = Field(0, ge=0, description=(
        "Candidates (best fused score first) the reranker orders; 0: all of them (~100). A slow reranker "
        "(a cross-encoder) wants fewer."))
    require_asked_kind: bool = Field(True, description=(
        "Answer \"how many / how much / when / what year\" questions only from sentences holding a number or "
        "a date, and \"what does X stand for\" only from sentences spelling X out or saying what it stands for "
        "(among the two best); otherwise the answer is unsupported."))
    lead_short_answer_weight: float = Field(0.25, ge=0, description=(
        "Of the two best-ranked sentences, the answer leads with the one scoring highest on log(probability) + "
        "this × its best short-answer span's score (qa/answer_lead.py); 0: the ranker's order."))
    min_support: float = Field(0.5, description=(
        "Support a cited claim needs from its quote: 0.75 × content-word recall + 0.25 × cosine "
        "(docs/GENERATORS.md)."))
    attribute_uncited: bool = Field(True, description=(
        "Cite a claim the generator left uncited with the shown passage that supports it best "
        "(origin \"verifier\")."))

    generator: str = Field("extractive", description="The default generator (GET /v1/generators lists them).")
    prompts_dir: Path = Field(default_factory=packaged_prompts, description=(
        "Where prompt templates named in settings live; default: the packaged prompts."))
    # Settings of the built-in generators: CITEQA_<GENERATOR>_<SETTING>.
    extractive_max_sentences: int = Field(2, ge=1, description=(
        "extractive: sentences an answer may give, each cited (SQuAD dev 1-1000: a second one raises citation "
        "recall 2 points for 2 of precision; a third adds nothing)."))
    extractive_min_probability: float = Field(0.5, ge=0, le=1, description=(
        "extractive: a further sentence joins when its probability of answering is at least this ..."))
    extractive_min_share: float = Field(0.5, ge=0, le=1, description=(
        "extractive: ... and at least this share of the first sentence's."))
    llamacpp_model_path: Path | None = Field(None, description=(
        "A GGUF file; default: the packaged SmolLM2-135M-Instruct."))
    llamacpp_context: int = Field(2048, ge=256, description="Context window in tokens (prompt + answer).")
    llamacpp_threads: int | None = Field(None, ge=1)
    llamacpp_prompt: str = Field("cited_answer_small", description="A template name in prompts/ or a path.")
    openai_base_url: str | None = Field(None, description="e.g. http://127.0.0.1:8080/v1")
    openai_model: str = "default"
    openai_api_key: SecretStr | None = None
    openai_timeout_s: float = Field(60.0, gt=0, description="Whole answer, and each wait for the upstream.")
    openai_retries: int = Field(2, ge=0, description="Retries of a failed connection, 429 or 5xx, with backoff.")
    openai_context: int = Field(4096, ge=256, description="The upstream model's context window in tokens.")
    openai_prompt: str = Field("cited_answer", description="A template name in prompts/ or a path.")
    generator_settings: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description='Settings of third-party generators by name, as JSON: {"name": {...}}.')

    reranker: str = Field("learned", description=(
        "Orders the retrieved sentences (a citeqa.rerankers plugin): learned (default) or cross-encoder."))
    # Settings of the built-in rerankers: CITEQA_<RERANKER>_<SETTING> (cross-encoder: CROSS_ENCODER).
    cross_encoder_path: Path | None = Field(None, description=(
        "reranker cross-encoder: a local sentence-transformers CrossEncoder directory (never downloaded)."))
    cross_encoder_batch_size: int = Field(16, ge=1, description="reranker cross-encoder: pairs per forward pass.")
    cross_encoder_max_length: int | None = Field(None, ge=8, description=(
        "reranker cross-encoder: tokens per (question, sentence) pair; default: the model's own."))
    reranker_settings: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description='Settings of rerankers by name, as JSON: {"name": {...}}.')

    auth: Literal["auto", "on", "off"] = Field(
        "auto", description="API keys: auto = required when binding a non-loopback address or once any key exists.")
    auth_reads: bool = Field(False, description="Reads (ask, search, chat, get) need a key too, not only writes.")
    key_rate_per_s: float = Field(10.0, ge=0, description=(
        "Default requests/s per key (0 = unlimited); keys may set their own."))
    key_burst: int = Field(40, ge=1)
    anonymous_rate_per_s: float = Field(0.0, ge=0, description=(
        "Requests/s per client address without a key (0 = unlimited)."))
    anonymous_burst: int = Field(40, ge=1)
    request_timeout_s: float = Field(300.0, gt=0, description="A response not started by then gets 504.")
    cors_origins: list[str] = Field(default_factory=list, description=(
        'Origins allowed by CORS, e.g. ["https://app.example"]; none by default.'))

    max_body_bytes: int = Field(5_000_000, ge=1024, description="Larger request bodies get 413.")
    # Files sent to POST /v1/documents as multipart/form-data (index/extract reads them).
    max_upload_bytes: int = Field(25_000_000, ge=1024, description=(
        "A file upload (POST /v1/documents as multipart/form-data): a larger request body, or file, gets 413."))
    max_decompressed_bytes: int = Field(200_000_000, ge=1024, description=(
        "A DOCX (a zip) may inflate to this many bytes; more is refused as a decompression bomb (422)."))
    max_pdf_pages: int = Field(2_000, ge=1, description="An uploaded PDF with more pages gets 413.")
    max_text_chars: int | None = Field(None, ge=1, description=(
        "Characters of text one uploaded file may yield (413 beyond); default: max_body_bytes, as much as "
        "a JSON body can carry."))
    # Limits on what one request may ask for, checked before any work (a 422 says the limit).
    max_question_chars: int = Field(2_000, ge=1, description=(
        "/v1/ask's question and a chat's last message: longer ones get 422."))
    max_query_chars: int = Field(2_000, ge=1, description="/v1/search's query: longer ones get 422.")
    max_chat_messages: int = Field(50, ge=1, description="Messages of one chat request, history included.")
    # Each kept response holds at most a chat's worth of text (max_chat_chars twice: the
    # conversation, and instructions) and its citations: some tens of MB at the most.
    max_kept_responses: int = Field(1_000, ge=0, description=(
        "Responses of POST /v1/responses kept in memory per process for previous_response_id (0: none)."))
    max_batch_documents: int = Field(100, ge=1, description=(
        "Documents of one POST /v1/documents:batch request; more get 413."))
    max_chat_chars: int = Field(20_000, ge=1, description=(
        "Characters of all the messages of one chat request together (the question included)."))
    max_metadata_bytes: int = Field(65_536, ge=2, description=(
        "A document's metadata, as compact UTF-8 JSON: larger gets 422."))
    faiss_save_interval_s: float = 5.0
    db_connections: int = Field(8, ge=1, description=(
        "Database connections a store holds open at once, lent to one request at a time (the embedded "
        "store keeps 2 more of its own: writer and change watch)."))
    key_db_connections: int = Field(4, ge=1, description=(
        "With CITEQA_STORE=postgresql://...: connections of the API keys' own pool (keys, revocations and "
        "rate-limit buckets, one short query each per request), beside the store's db_connections."))

    @field_validator("seeds_dir", "model_path", "llamacpp_model_path", "cross_encoder_path", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        # CITEQA_SEEDS_DIR= (empty) means "no seeds", not the current directory.
        return None if isinstance(value, str) and not value.strip() else value

    def generator_config(self, name: str) -> dict[str, Any]:
        """The settings a generator's factory receives: ``<name>_*`` fields, then any
        ``generator_settings[name]`` (how third-party generators are configured)."""
        prefix = f"{name}_"
        config: dict[str, Any] = {}
        for field, value in self:
            if field.startswith(prefix) and value is not None:
                config[field[len(prefix):]] = value.get_secret_value() if isinstance(value, SecretStr) else value
        config = {**config, **self.generator_settings.get(name, {})}
        prompt = config.get("prompt")
        if isinstance(prompt, str) and not Path(prompt).suffix:  # a template name, not a path
            config["prompt"] = self.prompts_dir / f"{prompt}.txt"
        return config

    def reranker_config(self, name: str) -> dict[str, Any]:
        """The settings a reranker's factory receives: a built-in's ``<name>_*`` fields
        (``-`` read as ``_``), then any ``reranker_settings[name]`` (third-party rerankers)."""
        config: dict[str, Any] = {}
        if name in _BUILT_IN_RERANKERS:  # only these own a prefix: a plugin named "max" gets no max_* fields
            prefix = f"{name.replace('-', '_')}_"
            config = {field[len(prefix):]: value for field, value in self
                      if field.startswith(prefix) and value is not None}
        return {**config, **self.reranker_settings.get(name, {})}

    # -- Exposure: what `citeqa serve` accepts before any route runs, and the URLs it writes --
    header_timeout_s: float = Field(10.0, gt=0, description=(
        "citeqa serve: a request's head (request line and headers) must be complete this many seconds after "
        "its first byte (or after the connection opened): slower clients get 408 and are disconnected."))
    max_header_bytes: int = Field(16_384, ge=1024, description=(
        "citeqa serve: a larger request head (request line and headers) gets 431 and the connection closed."))
    malloc_arenas: int = Field(2, ge=0, description=(
        "citeqa serve on glibc: at most this many malloc arenas (0: glibc's default, 8 per core), unless "
        "MALLOC_ARENA_MAX is set. With one arena per worker thread, memory freed by one thread is not "
        "reused by the next and the resident size creeps up under load (docs/STRESS.md, soak)."))
    public_base_url: str | None = Field(None, description=(
        "Where clients reach this server (scheme://host[:port][/prefix]), the base of the URLs it writes "
        "(citation links); default http://HOST:PORT of the bound address. Never taken from a request."))

    @field_validator("public_base_url", mode="before")
    @classmethod
    def _an_absolute_http_url(cls, value: object) -> object:
        from urllib.parse import urlsplit  # (here, to keep this section self-contained)

        if not isinstance(value, str) or not value.strip():
            return None if isinstance(value, str) else value
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise ValueError("public_base_url must be an http(s) URL such as https://qa.example.org, "
                             "with no query or fragment")
        return value.strip().rstrip("/")

    def public_url(self) -> str:
        """The base of every URL the server writes: ``public_base_url``, or the bound address
        (a wildcard bind as its loopback address: reachable here, and never a guess)."""
        if self.public_base_url:
            return self.public_base_url
        host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.host, self.host)
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"
