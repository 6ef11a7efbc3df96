"""Ingest rate beside the model's raw encode rate on the same sentences: the ratio shows what
splitting and storing add to embedding. Ingest goes in process or over HTTP (in batches, as
``citeqa ingest --url`` sends documents). In process, also how long the mention backfill
needs after the ingest (``CITEQA_MENTION_ANALYSIS=background``), and the rate with it."""

from __future__ import annotations

import time
from contextlib import nullcontext
from typing import Any, Callable, ContextManager, Sequence

import numpy as np

from citeqa.api.client import BATCH_PATH, ApiError, document_payload, post_batch, post_json
from citeqa.bench.errors import BenchError
from citeqa.bench.timing import ratio, timed_s
from citeqa.index.ingest import DocumentInput, embedding_text
from citeqa.index.sentences import split_sentences
from citeqa.index.types import Embedder

INGEST_BATCH = 256  # documents per ingest_many call, as `citeqa ingest` does
HTTP_BATCH = 100  # documents per POST /v1/documents:batch, as `citeqa ingest --url` sends them

# An ingest of one batch: (sentences stored, documents created, sentences of created documents).
IngestBatch = Callable[[Sequence[DocumentInput]], tuple[int, int, int]]


def split(items: Sequence[DocumentInput]) -> tuple[list[str], float]:
    """The texts the ingestor gives the model for these documents, and the seconds the split took."""
    t0 = time.perf_counter()
    spans = [(item, split_sentences(item.text)) for item in items]
    took = time.perf_counter() - t0
    # The ingestor embeds more than the bare sentence (the title too): so does the raw rate.
    return [embedding_text(item.title, item.text[s.start:s.end]) for item, found in spans for s in found], took


def in_process_ingest(services: Any) -> IngestBatch:
    """Ingest through ``services.ingestor`` (api.services.Services)."""
    def ingest(batch: Sequence[DocumentInput]) -> tuple[int, int, int]:
        done = services.ingestor.ingest_many(batch)
        return (sum(r.sentence_count for r in done), sum(r.created for r in done),
                sum(r.sentence_count for r in done if r.created))
    return ingest


def http_ingest(client: Any) -> IngestBatch:
    """Ingest through an httpx client as ``citeqa ingest --url`` does: ``POST /v1/documents:batch``,
    HTTP_BATCH documents a request, or one document per ``POST /v1/documents`` to a server
    from before the batch route."""
    batched = True

    def one_by_one(batch: Sequence[DocumentInput]) -> list[dict[str, Any]]:
        answers = []
        for item in batch:
            try:
                body = post_json(client, "/v1/documents", document_payload(item))
            except ApiError as exc:
                raise BenchError(f"POST /v1/documents for {item.doc_id}: {exc.status} {exc.message}") from exc
            answers.append({"status": "created" if body["created"] else "unchanged", **body})
        return answers

    def ingest(batch: Sequence[DocumentInput]) -> tuple[int, int, int]:
        nonlocal batched
        answers: list[dict[str, Any]] = []
        for start in range(0, len(batch), HTTP_BATCH):
            chunk = batch[start:start + HTTP_BATCH]
            if batched:
                try:
                    answers += post_batch(client, [document_payload(item) for item in chunk])
                    continue
                except ApiError as exc:
                    if exc.status not in (404, 405):
                        raise BenchError(f"POST {BATCH_PATH}: {exc.status} {exc.message}") from exc
                    batched = False
            answers += one_by_one(chunk)
        failed = [a for a in answers if a.get("status") == "error"]
        if failed:
            raise BenchError(f"{len(failed)} document(s) refused, e.g. {failed[0].get('doc_id')}: "
                             f"{failed[0].get('error')}")
        created = [a for a in answers if a["status"] == "created"]
        return (sum(a["sentence_count"] for a in answers), len(created), sum(a["sentence_count"] for a in created))
    return ingest


def ingest_and_encode(items: Sequence[DocumentInput], ingest: IngestBatch, embedder: Embedder | None,
                      repeats: int) -> dict[str, Any]:
    """Ingest ``items`` in batches of INGEST_BATCH documents, each batch beside a raw encode of
    its own sentences (which goes first alternates), so that both rates see the same machine
    load: on a shared 2-core machine that drifts within minutes."""
    if embedder is not None:
        embedder.encode(["warm-up: the first call pays for lazy set-up"] * 8)
    totals = dict.fromkeys(("sentences", "created", "new", "texts", "ingest_s", "split_s", "encode_s"), 0.0)
    batches = []
    for number, start in enumerate(range(0, len(items), INGEST_BATCH)):
        batch = items[start:start + INGEST_BATCH]
        row: dict[str, Any] = {"documents": len(batch)}
        encode_first = number % 2 == 0  # alternate, so neither always runs on a warmer machine
        if embedder is not None and encode_first:
            row |= _encode(batch, embedder, repeats)
        row |= _store(batch, ingest)
        if embedder is not None and not encode_first:
            row |= _encode(batch, embedder, repeats)
        for key in totals:
            totals[key] += row.get(key, 0.0)
        if embedder is not None and row["new"]:
            row["ingest_vs_encode_ratio"] = round((row["new"] / row["ingest_s"]) / (row["texts"] / row["encode_s"]), 3)
        batches.append({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()})
    ingest_rate = totals["new"] / totals["ingest_s"] if totals["new"] else None
    results: dict[str, Any] = {
        "sentences": int(totals["sentences"]), "ingest_new_sentences": int(totals["new"]),
        "ingest_s": round(totals["ingest_s"], 2),
        "ingest_created_documents": int(totals["created"]),
        "ingest_unchanged_documents": len(items) - int(totals["created"]),
        "ingest_sentences_per_s": round(ingest_rate, 1) if ingest_rate else None,
        "ingest_documents_per_s": round(len(items) / totals["ingest_s"], 1),
        "ingest_batches": batches,
    }
    if embedder is not None:
        raw_rate = totals["texts"] / totals["encode_s"]
        per_batch = [b["ingest_vs_encode_ratio"] for b in batches if "ingest_vs_encode_ratio" in b]
        results |= {
            "raw_encode_sentences_per_s": round(raw_rate, 1),
            "raw_encode_repeats": repeats,
            "ingest_vs_encode_ratio": ratio(ingest_rate, raw_rate),
            "ingest_vs_encode_ratio_batch_median": round(float(np.median(per_batch)), 3) if per_batch else None,
            "split_sentences_per_s": round(totals["texts"] / max(totals["split_s"], 1e-9), 1),
            # What ingest spends beyond splitting and encoding: storing (SQLite, FTS5, FAISS), bookkeeping.
            "ingest_other_s": round(totals["ingest_s"] - totals["split_s"] - totals["encode_s"], 2),
        }
    return results


def ingest_in_process(services: Any, items: Sequence[DocumentInput], repeats: int,
                      timeout_s: float = 3600.0) -> dict[str, Any]:
    """``ingest_and_encode`` through ``services`` (api.services.Services), then the wait for the
    mention backfill to analyse what the ingest stored without mentions. The backfill is held
    through the ingest, as a continuous ingest holds it (it analyses after a quiet second):
    here it would run during the raw encodes between batches and slow them instead."""
    backfill = services.backfill
    hold: ContextManager[None] = backfill.held() if backfill is not None else nullcontext()
    with hold:
        results = ingest_and_encode(items, in_process_ingest(services), services.embedder, repeats)
    t0 = time.perf_counter()
    caught_up = backfill.wait(timeout_s) if backfill is not None else True
    after_s = time.perf_counter() - t0
    if not caught_up:
        raise BenchError(f"the mention backfill had not caught up {timeout_s:.0f} s after the ingest")
    new, ingest_s = results["ingest_new_sentences"], results["ingest_s"]
    with_analysis = new / (ingest_s + after_s) if new else None
    results |= {
        "mention_analysis": services.ingestor.analysis,
        "analysis_after_ingest_s": round(after_s, 2),
        # Issue 14's figure: the ingest and the analysis of what it stored, against the raw encode.
        "ingest_with_analysis_sentences_per_s": round(with_analysis, 1) if with_analysis else None,
        "ingest_with_analysis_vs_encode_ratio": ratio(with_analysis, results.get("raw_encode_sentences_per_s")),
    }
    return results


def ingest_inline_in_process(settings: Any, items: Sequence[DocumentInput], repeats: int,
                             embedder: Embedder | None) -> dict[str, Any]:
    """The same ingest into a fresh data directory with ``mention_analysis="inline"``: each
    document's entities, chunks and roles computed beside its encode, before the ingest
    returns. Issue 14's figure is this one, "entity extraction included"; the default
    (background) ingest above is issue 17's, and its analysis follows it."""
    from citeqa.api.services import Services

    services = Services.open(settings.model_copy(update={"mention_analysis": "inline"}), embedder)
    try:
        found = ingest_and_encode(items, in_process_ingest(services), services.embedder, repeats)
    finally:
        services.close()
    return {
        "ingest_inline_analysis_sentences_per_s": found["ingest_sentences_per_s"],
        "ingest_inline_analysis_raw_encode_sentences_per_s": found.get("raw_encode_sentences_per_s"),
        "ingest_inline_analysis_vs_encode_ratio": found.get("ingest_vs_encode_ratio"),
    }


def _encode(batch: Sequence[DocumentInput], embedder: Embedder, repeats: int) -> dict[str, Any]:
    texts, split_s = split(batch)
    return {"split_s": split_s, "texts": len(texts),
            "encode_s": float(np.median([timed_s(embedder.encode, texts) for _ in range(repeats)]))}


def _store(batch: Sequence[DocumentInput], ingest: IngestBatch) -> dict[str, Any]:
    t0 = time.perf_counter()
    sentences, created, new = ingest(batch)
    return {"sentences": sentences, "created": created, "new": new, "ingest_s": time.perf_counter() - t0}
