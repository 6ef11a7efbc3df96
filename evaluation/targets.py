"""Where ``citeqa eval`` sends its questions: a citeqa in this process (a fresh data
directory) or any running server, driven over HTTP only. Both give the same JSON."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Protocol, Sequence

import httpx

from citeqa.api.client import document_payload, document_text, post_json
from citeqa.api.schemas import AskOut, HitOut
from citeqa.index.ingest import DocumentInput

if TYPE_CHECKING:
    from citeqa.api.services import Services

INGEST_BATCH = 256


class EvalTarget(Protocol):
    """A citeqa to evaluate: in process or over HTTP, the same JSON either way."""

    def describe(self) -> dict[str, Any]: ...

    def ingest(self, docs: Sequence[DocumentInput], progress: Callable[[int], None]) -> None: ...

    def ask(self, question: str, top_k: int | None) -> dict[str, Any]: ...

    def search(self, query: str, top_k: int) -> dict[str, Any]: ...

    def document_text(self, doc_id: str, version: str) -> str | None: ...


class InProcessTarget:
    """The services of a citeqa in this process, answering as the HTTP API would."""

    def __init__(self, services: Services, generator: str | None = None, options: dict[str, Any] | None = None):
        self.services = services
        self.generator = generator
        self.options = options

    def describe(self) -> dict[str, Any]:
        s = self.services.settings
        return {"target": "in-process", "data_dir": str(s.data_dir), "model": self.services.embedder.name,
                "fusion": s.fusion, "min_similarity": s.min_similarity,
                "min_probability": self.services.answerer.min_probability, "generator": self.generator or s.generator,
                "generator_options": self.options or {},
                "settings": s.model_dump(mode="json")}

    def ingest(self, docs: Sequence[DocumentInput], progress: Callable[[int], None]) -> None:
        for start in range(0, len(docs), INGEST_BATCH):
            self.services.ingestor.ingest_many(docs[start:start + INGEST_BATCH], progress=progress)

    def ask(self, question: str, top_k: int | None) -> dict[str, Any]:
        k = top_k or self.services.settings.default_top_k
        result = self.services.answerer.ask(question, k, generator=self.generator, options=self.options)
        return AskOut.of(result).model_dump()

    def search(self, query: str, top_k: int) -> dict[str, Any]:
        return {"hits": [HitOut.of(h).model_dump() for h in self.services.answerer.search(query, top_k)]}

    def document_text(self, doc_id: str, version: str) -> str | None:
        doc = self.services.store.document(doc_id, version)
        return doc.text if doc else None


class HttpTarget:
    """Any running citeqa, over its HTTP API only. A 4xx or 5xx raises api.client.ApiError."""

    def __init__(self, url: str, timeout: float = 120.0, client: httpx.Client | None = None,
                 generator: str | None = None, options: dict[str, Any] | None = None):
        self.url = url
        self.client = client or httpx.Client(base_url=url, timeout=timeout)
        self.choice = {k: v for k, v in {"generator": generator, "generator_options": options}.items() if v}

    def describe(self) -> dict[str, Any]:
        return {"target": self.url, **self.choice}

    def ingest(self, docs: Sequence[DocumentInput], progress: Callable[[int], None]) -> None:
        for d in docs:
            post_json(self.client, "/v1/documents", document_payload(d))
            progress(1)

    def ask(self, question: str, top_k: int | None) -> dict[str, Any]:
        return post_json(self.client, "/v1/ask",
                         {"question": question, **({"top_k": top_k} if top_k else {}), **self.choice})

    def search(self, query: str, top_k: int) -> dict[str, Any]:
        return post_json(self.client, "/v1/search", {"query": query, "top_k": top_k})

    def document_text(self, doc_id: str, version: str) -> str | None:
        return document_text(self.client, doc_id, version)
