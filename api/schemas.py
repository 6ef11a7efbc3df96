"""The JSON shapes of the HTTP API (and of `citeqa ask --json`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from citeqa.index.types import Document, Hit
from citeqa.qa.types import VerifiedAnswer


class _Request(BaseModel):
    # Unknown fields are an error: a typo like "topk" should not be silently ignored.
    model_config = ConfigDict(extra="forbid")


class DocumentIn(_Request):
    text: str = Field(..., description="The document's text; stored exactly as sent.")
    doc_id: str | None = Field(None, min_length=1, max_length=256, description="Defaults to a content hash.")
    title: str = Field("", max_length=1000)
    metadata: dict[str, Any] = Field(default_factory=dict)


class DocumentWritten(BaseModel):
    doc_id: str
    doc_version: str
    sentence_count: int
    created: bool = Field(description="False when this exact version was already stored.")


class SentenceOut(BaseModel):
    id: str
    start: int
    end: int


class SpanOut(BaseModel):
    start: int
    end: int
    text: str


class DocumentOut(BaseModel):
    doc_id: str
    doc_version: str
    title: str
    text: str
    metadata: dict[str, Any]
    current: bool = Field(description="Whether this is the version that is searched.")
    sentences: list[SentenceOut]
    offset_unit: Literal["codepoint"] = "codepoint"
    span: SpanOut | None = Field(None, description="text[start:end] when ?start=&end= were given.")


class DocumentSummary(BaseModel):
    doc_id: str
    doc_version: str
    title: str
    metadata: dict[str, Any]

    @classmethod
    def of(cls, doc: Document) -> "DocumentSummary":
        return cls(doc_id=doc.doc_id, doc_version=doc.version, title=doc.title, metadata=doc.metadata)


class DocumentList(BaseModel):
    documents: list[DocumentSummary]
    total: int
    limit: int
    offset: int
    next_offset: int | None


class SearchIn(_Request):
    query: str = Field(..., min_length=1)
    top_k: int | None = Field(None, ge=1)


class HitOut(BaseModel):
    sentence_id: str
    doc_id: str
    doc_version: str
    start: int
    end: int
    text: str
    score: float
    dense_score: float | None = None
    lexical_score: float | None = None

    @classmethod
    def of(cls, hit: Hit) -> "HitOut":
        s = hit.sentence
        return cls(
            sentence_id=s.id, doc_id=s.doc_id, doc_version=s.doc_version, start=s.start, end=s.end,
            text=s.text, score=round(hit.score, 6), dense_score=hit.dense_score, lexical_score=hit.lexical_score,
        )


class SearchOut(BaseModel):
    hits: list[HitOut]
    offset_unit: Literal["codepoint"] = "codepoint"
    timings_ms: dict[str, float]


class AskIn(_Request):
    question: str = Field(..., min_length=1)
    top_k: int | None = Field(None, ge=1, description="Passages retrieved for the answer.")
    generator: str | None = Field(None, description="A name from GET /v1/generators (default: the server's).")
    generator_options: dict[str, Any] | None = Field(
        None, description="Options of that generator, e.g. {\"temperature\": 0.2, \"max_tokens\": 200}.")


class CitationOut(BaseModel):
    marker: int
    sentence_id: str
    doc_id: str
    doc_version: str
    start: int
    end: int
    quote: str
    answer_start: int
    answer_end: int
    score: float
    support: float
    origin: Literal["generator", "verifier"] = Field(
        "generator", description="Who placed the citation: the generator's own [n] marker, or the verifier "
        "attributing a claim the generator left uncited to the passage that supports it.")


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
    def of(cls, result: VerifiedAnswer) -> "AskOut":
        return cls(
            answer=result.answer, status=result.status,
            citations=[CitationOut(**vars(c)) for c in result.citations],
            dropped_citations=result.dropped_citations, timings_ms=result.timings_ms, generation=result.generation,
            short_answer=ShortAnswerOut(**vars(result.short_answer)) if result.short_answer else None,
        )


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
