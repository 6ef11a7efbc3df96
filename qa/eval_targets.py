"""Where `citeqa eval` sends its questions: a citeqa in this process (a fresh data
directory) or any running server, driven over HTTP only."""

from __future__ import annotations

from importlib.metadata import version
from typing import Any, Callable, Sequence
from urllib.parse import quote

import httpx

from citeqa.index.ingest import DocumentInput

INGEST_BATCH = 256


class InProcessTarget:
    def __init__(self, services: Any, generator: str | None = None, options: dict[str, Any] | None = None):
        self.services = services  # api.services.Services (kept loose: qa/ does not import api/)
        self.generator = generator
        self.options = options

    def describe(self) -> dict[str, Any]:
        s = self.services.settings
        return {"target": "in-process", "data_dir": str(s.data_dir), "model": self.services.embedder.name,
                "fusion": s.fusion, "min_similarity": s.min_similarity, "generator": self.generator or s.generator,
                "generator_options": self.options or {},
                "settings": s.model_dump(mode="json")}

    def ingest(self, docs: Sequence[DocumentInput], progress: Callable[[int], None]) -> None:
        for start in range(0, len(docs), INGEST_BATCH):
            self.services.ingestor.ingest_many(docs[start:start + INGEST_BATCH], progress=progress)

    def ask(self, question: str, top_k: int | None) -> dict[str, Any]:
        from citeqa.api.schemas import AskOut

        k = top_k or self.services.settings.default_top_k
        result = self.services.answerer.ask(question, k, generator=self.generator, options=self.options)
        return AskOut.of(result).model_dump()

    def search(self, query: str, top_k: int) -> dict[str, Any]:
        from citeqa.api.schemas import HitOut

        return {"hits": [HitOut.of(h).model_dump() for h in self.services.retriever.search(query, top_k)]}

    def document_text(self, doc_id: str, version_: str) -> str | None:
        doc = self.services.store.document(doc_id, version_)
        return doc.text if doc else None


class HttpTarget:
    def __init__(self, url: str, timeout: float = 120.0, client: httpx.Client | None = None,
                 generator: str | None = None, options: dict[str, Any] | None = None):
        self.url = url
        self.client = client or httpx.Client(base_url=url, timeout=timeout)
        self.choice = {k: v for k, v in {"generator": generator, "generator_options": options}.items() if v}

    def describe(self) -> dict[str, Any]:
        return {"target": self.url, **self.choice}

    def _post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        r = self.client.post(path, json=payload)
        if r.status_code >= 400:
            raise RuntimeError(f"POST {path} -> {r.status_code}: {r.text[:300]}")
        return r.json()

    def ingest(self, docs: Sequence[DocumentInput], progress: Callable[[int], None]) -> None:
        for d in docs:
            self._post("/v1/documents", {"doc_id": d.doc_id, "title": d.title, "text": d.text, "metadata": d.metadata})
            progress(1)

    def ask(self, question: str, top_k: int | None) -> dict[str, Any]:
        return self._post("/v1/ask", {"question": question, **({"top_k": top_k} if top_k else {}), **self.choice})

    def search(self, query: str, top_k: int) -> dict[str, Any]:
        return self._post("/v1/search", {"query": query, "top_k": top_k})

    def document_text(self, doc_id: str, version_: str) -> str | None:
        r = self.client.get(f"/v1/documents/{quote(doc_id, safe='')}", params={"version": version_})
        return r.json()["text"] if r.status_code == 200 else None


def package_versions() -> dict[str, str]:
    out = {}
    for name in ("citeqa", "sentence-transformers", "torch", "faiss-cpu", "pysbd", "fastapi", "llama-cpp-python"):
        try:
            out[name] = version(name)
        except Exception:
            out[name] = "not installed"
    return out
