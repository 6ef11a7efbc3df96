"""Shared fixtures: one real embedding model per test session, real stores in tmp dirs."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SEEDS_DIR = PROJECT_ROOT / "seeds"
SHARED_EVAL = PROJECT_ROOT.parent / "shared" / "eval"
TROOPS_QUESTION = "How many troops did North Korea send?"
UNSUPPORTED_QUESTION = "What is the boiling point of tungsten?"


@pytest.fixture(scope="session")
def embedder():
    from index.embedder import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder()


@pytest.fixture
def settings(tmp_path):
    from api.settings import Settings

    return Settings(data_dir=tmp_path / "data", seeds_dir=SEEDS_DIR)


@pytest.fixture
def client(settings, embedder):
    """An API client over the app factory, with the lifespan run (seeds indexed)."""
    from fastapi.testclient import TestClient

    from api.app import create_app

    with TestClient(create_app(settings, embedder=embedder)) as c:
        yield c


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def assert_citation_contract(client, body: dict) -> None:
    """Every citation's quote is the stored text at its offsets, fetched back over the API,
    and answer[answer_start:answer_end] is a non-empty part of the answer."""
    assert body["offset_unit"] == "codepoint"
    for c in body["citations"]:
        doc = client.get(f"/v1/documents/{c['doc_id']}", params={"version": c["doc_version"]})
        assert doc.status_code == 200, doc.text
        text = doc.json()["text"]
        assert text[c["start"]:c["end"]] == c["quote"]
        assert 0 <= c["answer_start"] < c["answer_end"] <= len(body["answer"])
        assert f"[{c['marker']}]" in body["answer"]
        assert c["sentence_id"] == f"{c['doc_id']}:{c['sentence_id'].rsplit(':', 1)[1]}"
    short = body.get("short_answer")
    if short:
        first = body["citations"][0]
        text = client.get(f"/v1/documents/{short['doc_id']}", params={"version": short["doc_version"]}).json()["text"]
        assert text[short["start"]:short["end"]] == short["text"]
        assert first["start"] <= short["start"] < short["end"] <= first["end"]
