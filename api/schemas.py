"""The JSON shapes of the HTTP API (and of `citeqa ask --json`)."""

from __future__ import annotations

import json
from typing import Any, Literal

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field

from citeqa.api.settings import Settings
from citeqa.index.scope import DEFAULT_COLLECTION, MAX_FILTER_DOC_IDS
from citeqa.index.types import Collection, Document, Hit, Source
from citeqa.qa.types import VerifiedAnswer


class _Request(BaseModel):
    # Unknown fields are an error: a typo like "topk" should not be silently ignored.
    model_config = ConfigDict(extra="forbid")


# -- limits --------------------------------------------------------------------------------
# The limits are settings, so they are checked against the server's Settings as a route's
# first step (``body.check_limits(settings)``), before any work; a request over one gets
# the 422 of any invalid field, whose message names the field and the limit.


def over_limit(field: str, message: str) -> RequestValidationError:
    return RequestValidationError([{"type": "limit", "loc": ("body", field), "msg": message}])


def check_length(field: str, text: str, limit: int) -> None:
    if len(text) > limit:
        raise over_limit(field, f"longer than the limit of {limit} characters (got {len(text)})")


def json_size(value: Any) -> int:
    """Bytes of ``value`` as compact UTF-8 JSON (what a metadata limit counts)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return len(text.encode("utf-8", "surrogatepass"))  # a lone surrogate is refused later, by ingest


COLLECTION_DESCRIPTION = (
    "The collection to work in (default: `default`, or the API key's only collection when it may not use "
    "`default`). A name is 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit. A collection "
    "the key may not use answers 404, as one that does not exist does.")


class FilterIn(_Request):
    """Which documents of the collection a search may return; every part given must hold."""

    doc_ids: list[str] | None = Field(None, max_length=MAX_FILTER_DOC_IDS, description=(
        "Only these documents (doc_ids of the collection)."))
    metadata: dict[str, Any] | None = Field(None, description=(
        "Conditions on top-level metadata keys, all of which must hold: `{\"lang\": \"en\"}` (equal), "
        "`{\"lang\": [\"en\", \"de\"]}` (one of), `{\"year\": {\"gte\": 2000, \"lt\": 2010}}` (a range of "
        "numbers, or of ISO-8601 dates such as \"2024-05-01\"), `{\"k\": {\"eq\": v}}`, `{\"k\": {\"in\": [...]}}`. "
        "A document without the key never matches."))


class _Scoped(_Request):
    """A search or a question: a collection, and a filter inside it."""

    collection: str | None = Field(None, description=COLLECTION_DESCRIPTION)
    filter: FilterIn | None = Field(None, description="Search only the documents that match (default: all).")

    @property
    def filter_parts(self) -> tuple[list[str] | None, dict[str, Any] | None]:
        """(doc_ids, metadata) as index/scope.py ``scope_from_request`` takes them."""
        return (self.filter.doc_ids, self.filter.metadata) if self.filter else (None, None)


class DocumentIn(_Request):
    text: str = Field(..., description="The document's text; stored exactly as sent.")
    collection: str | None = Field(None, description=COLLECTION_DESCRIPTION + " Ingest creates a missing one.")
    doc_id: str | None = Field(None, min_length=1, max_length=256, description="Defaults to a content hash.")
    title: str = Field("", max_length=1000)
    metadata: dict[str, Any] = Field(default_factory=dict, description=(
        "At most CITEQA_MAX_METADATA_BYTES (64 KiB by default) as compact UTF-8 JSON."))

    def check_limits(self, settings: Settings) -> None:
        check_metadata_size(self.metadata, settings)


def check_metadata_size(metadata: dict[str, Any], settings: Settings) -> None:
    limit = settings.max_metadata_bytes
    if metadata and (size := json_size(metadata)) > limit:
        raise over_limit("metadata", f"larger than the limit of {limit} bytes as JSON (got {size})")


class SentenceOut(BaseModel):
    id: str
    start: int
    end: int


class SpanOut(BaseModel):
    start: int
    end: int
    text: str
    page: int | None = Field(None, description="PDF: the 1-based page the span starts on.")
    end_page: int | None = Field(None, description="PDF: the page it ends on, when that is another page.")


class SourceOut(BaseModel):
    """The file a version was extracted from (absent for text sent as text)."""

    media_type: str
    filename: str
    size: int = Field(description="Bytes of the original file.")
    sha256: str
    page_count: int = Field(0, description="Pages of a PDF (0 for formats without pages).")
    original_url: str = Field(description="Where the original bytes are: GET this path.")

    @classmethod
    def of(cls, source: Source, original_url: str) -> "SourceOut":
        return cls(media_type=source.media_type, filename=source.filename, size=source.size, sha256=source.sha256,
                   page_count=len(source.pages), original_url=original_url)


class DocumentWritten(BaseModel):
    collection: str = DEFAULT_COLLECTION
    doc_id: str
    doc_version: str
    sentence_count: int
    created: bool = Field(description="False when this exact version was already stored.")
    source: SourceOut | None = Field(None, description=(
        "A file upload: the file the version was extracted from, its media type as detected from the "
        "content, its page count and where its bytes are (null for a JSON body)."))


class DocumentOut(BaseModel):
    collection: str = DEFAULT_COLLECTION
    doc_id: str
    doc_version: str
    title: str
    text: str
    metadata: dict[str, Any]
    current: bool = Field(description="Whether this is the version that is searched.")
    sentences: list[SentenceOut]
    offset_unit: Literal["codepoint"] = "codepoint"
    span: SpanOut | None = Field(None, description="text[start:end] when ?start=&end= were given.")
    source: SourceOut | None = Field(None, description="The file this version was extracted from, if any.")


class DocumentSummary(BaseModel):
    doc_id: str
    doc_version: str
    title: str
    metadata: dict[str, Any] | None = Field(None, description="Only when asked for (?metadata=true): it can be large.")

    @classmethod
    def of(cls, doc: Document, with_metadata: bool = True) -> "DocumentSummary":
        return cls(doc_id=doc.doc_id, doc_version=doc.version, title=doc.title,
                   metadata=doc.metadata if with_metadata else None)


class DocumentList(BaseModel):
    collection: str = DEFAULT_COLLECTION
    documents: list[DocumentSummary]
    total: int
    limit: int
    offset: int
    next_offset: int | None


class SearchIn(_Scoped):
    query: str = Field(..., min_length=1, description="At most CITEQA_MAX_QUERY_CHARS (2,000 by default).")
    top_k: int | None = Field(None, ge=1)

    def check_limits(self, settings: Settings) -> None:
        check_length("query", self.query, settings.max_query_chars)


class HitOut(BaseModel):
    collection: str = DEFAULT_COLLECTION
    sentence_id: str
    doc_id: str
    doc_version: str
    start: int
    end: int
    text: str
    score: float = Field(description=(
        "The reranker's probability (0-1) that this sentence answers the query; /v1/ask abstains when the "
        "best one is under the gate's threshold."))
    dense_score: float | None = Field(None, description="Cosine similarity of query and sentence.")
    lexical_score: float | None = Field(None, description="BM25 of the sentence (when it matched a word).")
    page: int | None = Field(None, description="PDF: the 1-based page the sentence starts on.")
    end_page: int | None = Field(None, description="PDF: the page it ends on, when that is another page.")
    link: str | None = Field(None, description=(
        "The document's URL (metadata url) with a text fragment (#:~:text=) that a browser scrolls to and highlights."))

    @classmethod
    def of(cls, hit: Hit) -> "HitOut":
        s = hit.sentence
        return cls(
            collection=s.collection, sentence_id=s.id, doc_id=s.doc_id, doc_version=s.doc_version, start=s.start,
            end=s.end, text=s.text, score=round(hit.score, 6), dense_score=hit.dense_score,
            lexical_score=hit.lexical_score,
        )


class SearchOut(BaseModel):
    hits: list[HitOut]
    offset_unit: Literal["codepoint"] = "codepoint"
    timings_ms: dict[str, float]


class AskIn(_Scoped):
    question: str = Field(..., min_length=1, description="At most CITEQA_MAX_QUESTION_CHARS (2,000 by default).")
    top_k: int | None = Field(None, ge=1, description="Passages retrieved for the answer.")
    generator: str | None = Field(None, description="A name from GET /v1/generators (default: the server's).")
    generator_options: dict[str, Any] | None = Field(
        None, description="Options of that generator, e.g. {\"temperature\": 0.2, \"max_tokens\": 200}.")

    def check_limits(self, settings: Settings) -> None:
        check_length("question", self.question, settings.max_question_chars)


class CitationOut(BaseModel):
    collection: str = Field(DEFAULT_COLLECTION, description="The collection the cited document is in.")
    marker: int
    sentence_id: str
    doc_id: str
    doc_version: str
    start: int
    end: int
    quote: str
    answer_start: int
    answer_end: int
    score: float = Field(description="The reranker's probability (0-1) that the cited sentence answers the question.")
    support: float
    origin: Literal["generator", "verifier"] = Field(
        "generator", description="Who placed the citation: the generator's own [n] marker, or the verifier "
        "attributing a claim the generator left uncited to the passage that supports it.")
    page: int | None = Field(None, description="PDF: the 1-based page the quote starts on.")
    end_page: int | None = Field(None, description="PDF: the page it ends on, when that is another page.")
    link: str | None = Field(None, description=(
        "The document's URL (metadata url) with a text fragment (#:~:text=) that a browser scrolls to and highlights."))


class ShortAnswerOut(BaseModel):
    text: str
    doc_id: str
    doc_version: str
    start: int
    end: int


class AskOut(BaseModel):
    answer: str
    status: Literal["answered", "partial", "unsupported"]
    short_answer: ShortAnswerOut | None = Field(
        None, description="The factoid inside the first cited sentence (document offsets, same contract as quotes)."
    )
    citations: list[CitationOut]
    offset_unit: Literal["codepoint"] = "codepoint"
    dropped_citations: int
    timings_ms: dict[str, float]
    generation: dict[str, Any] = Field(
        default_factory=dict, description="generator, passages_shown and, for language models, prompt_tokens, "
        "completion_tokens, first_token_ms, generate_ms, tokens_per_s.")

    @classmethod
    def of(cls, result: VerifiedAnswer, collection: str = DEFAULT_COLLECTION) -> "AskOut":
        return cls(
            answer=result.answer, status=result.status,
            citations=[CitationOut(**vars(c), collection=collection) for c in result.citations],
            dropped_citations=result.dropped_citations, timings_ms=result.timings_ms, generation=result.generation,
            short_answer=ShortAnswerOut(**vars(result.short_answer)) if result.short_answer else None,
        )


class CollectionIn(_Request):
    name: str = Field(..., description="1-64 letters, digits, '.', '_' or '-', starting with a letter or digit.")


class CollectionOut(BaseModel):
    name: str
    documents: int = Field(description="Live documents (their current versions).")
    created_at: float = Field(description="Unix time.")

    @classmethod
    def of(cls, c: Collection) -> "CollectionOut":
        return cls(name=c.name, documents=c.documents, created_at=c.created_at)


class CollectionList(BaseModel):
    collections: list[CollectionOut]


class CollectionDeleted(BaseModel):
    name: str
    documents_removed: int = Field(description="Live documents taken out of search and listings; their versions "
                                   "stay readable by version, as after a document's delete.")
    kept: bool = Field(description="True for `default`, which is emptied but always exists.")
    message: str


class GeneratorOut(BaseModel):
    name: str
    description: str
    default: bool
    available: bool
    reason: str | None = Field(None, description="Why it is not available here, and how to add it.")
    options: dict[str, Any] = Field(description="JSON schema of its generator_options.")


class GeneratorList(BaseModel):
    generators: list[GeneratorOut]
    default: str


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorOut(BaseModel):
    error: ErrorBody


class DocumentsBatchIn(_Request):
    """Several documents in one request (``POST /v1/documents:batch``). Each item is checked
    on its own (as ``DocumentIn``): one that is not a valid document is reported in its place
    and the others are stored."""

    documents: list[Any] = Field(..., min_length=1, description=(
        "The documents, each the JSON body of POST /v1/documents (`text`, `doc_id`, `title`, `metadata`, "
        "`collection`). At most CITEQA_MAX_BATCH_DOCUMENTS (100 by default): more get 413."),
        json_schema_extra={"items": {"$ref": "#/components/schemas/DocumentIn"}})
    collection: str | None = Field(None, description=(
        "The collection of the items that name none (as an item's own `collection`)."))


class BatchItemOut(BaseModel):
    """What became of one item of a batch, at its ``index`` in the request."""

    index: int
    status: Literal["created", "unchanged", "error"]
    http_status: int = Field(description=(
        "The status POST /v1/documents would have answered for this item alone: 201 created, 200 unchanged, "
        "else the error's (422 invalid, 404 a collection the key may not use...)."))
    collection: str | None = None
    doc_id: str | None = Field(None, description="null for an item that failed before it had one.")
    doc_version: str | None = None
    sentence_count: int | None = None
    error: ErrorBody | None = Field(None, description="Why the item was not stored (status `error` only).")


class DocumentsBatchOut(BaseModel):
    """One entry per item, in request order. The stored items were written in one transaction."""

    documents: list[BatchItemOut]
    created: int
    unchanged: int
    failed: int
