"""Where ``citeqa eval`` sends its questions: a citeqa in this process (a fresh data
directory) or any running server, driven over HTTP only. Both give the same JSON.

Either target works inside one collection: the corpus is stored there and questions are
answered and searched there only, so runs in separate collections of one server do not
see each other's documents.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, Callable, Protocol, Sequence

import httpx

from citeqa.api.client import collection_field, document_payload, document_text, post_json
from citeqa.api.schemas import AskOut, HitOut
from citeqa.index.ingest import DocumentInput
from citeqa.index.scope import DEFAULT_COLLECTION, Scope

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

    def __init__(self, services: Services, generator: str | None = None, options: dict[str, Any] | None = None,
                 collection: str = DEFAULT_COLLECTION):
        self.services = services
        self.generator = generator
        self.options = options
        self.collection = collection
        self.answerer = services.answerer_for(Scope(collection))

    def describe(self) -> dict[str, Any]:
        s = self.services.settings
        return {"target": "in-process", "collection": self.collection, "data_dir": str(s.data_dir),
                "model": self.services.embedder.name,
                "fusion": s.fusion, "min_similarity": s.min_similarity,
                "min_probability": self.services.answerer.min_probability, "generator": self.generator or s.generator,
                "generator_options": self.options or {},
                "settings": s.model_dump(mode="json")}

    def ingest(self, docs: Sequence[DocumentInput], progress: Callable[[int], None]) -> None:
        self.services.store.create_collection(self.collection)  # asked even when nothing is indexed
        docs = [replace(d, collection=self.collection) for d in docs]
        for start in range(0, len(docs), INGEST_BATCH):
            self.services.ingestor.ingest_many(docs[start:start + INGEST_BATCH], progress=progress)

    def ask(self, question: str, top_k: int | None) -> dict[str, Any]:
        k = top_k or self.services.settings.default_top_k
        result = self.answerer.ask(question, k, generator=self.generator, options=self.options)
        return AskOut.of(result, self.collection).model_dump()

    def search(self, query: str, top_k: int) -> dict[str, Any]:
        return {"hits": [HitOut.of(h).model_dump() for h in self.answerer.search(query, top_k)]}

    def document_text(self, doc_id: str, version: str) -> str | None:
        doc = self.services.store.document(doc_id, version, self.collection)
        return doc.text if doc else None


class HttpTarget:
    """Any running citeqa, over its HTTP API only. A 4xx or 5xx raises api.client.ApiError."""

    def __init__(self, url: str, timeout: float = 120.0, client: httpx.Client | None = None,
                 generator: str | None = None, options: dict[str, Any] | None = None,
                 collection: str | None = None):
        self.url = url
        self.client = client or httpx.Client(base_url=url, timeout=timeout)
        self.choice = {k: v for k, v in {"generator": generator, "generator_options": options}.items() if v}
        # None: no field is sent, and the server chooses (``default``, or the key's only one).
        self.collection = collection
        self.within = collection_field(collection)

    def describe(self) -> dict[str, Any]:
        return {"target": self.url, "collection": self.collection or DEFAULT_COLLECTION, **self.choice}

    def ingest(self, docs: Sequence[DocumentInput], progress: Callable[[int], None]) -> None:
        if self.collection is not None:
            # Created first, so that a run with every document left out still has a collection
            # to be asked in. 409 (it exists) is fine; a refusal (say, creating needs an admin
            # key) leaves it to the first document, as before.
            self.client.post("/v1/collections", json={"name": self.collection})
        for d in docs:
            post_json(self.client, "/v1/documents", {**document_payload(d), **self.within})
            progress(1)

    def ask(self, question: str, top_k: int | None) -> dict[str, Any]:
        return post_json(self.client, "/v1/ask", {"question": question, **({"top_k": top_k} if top_k else {}),
                                                 **self.choice, **self.within})

    def search(self, query: str, top_k: int) -> dict[str, Any]:
        return post_json(self.client, "/v1/search", {"query": query, "top_k": top_k, **self.within})

    def document_text(self, doc_id: str, version: str) -> str | None:
        return document_text(self.client, doc_id, version, self.collection)
