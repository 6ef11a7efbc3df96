"""Shared fixtures: one real embedding model per test session, real stores in tmp dirs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from index.local_postgres import free_port  # noqa: F401 (tests import it from here)

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


def _llm_missing() -> str | None:
    import importlib.util

    from qa.generators.llamacpp import INSTALL_HINT, packaged_model_path

    if importlib.util.find_spec("llama_cpp") is None or packaged_model_path() is None:
        return f"needs the [llm] extra and the packaged model: {INSTALL_HINT}"
    return None


requires_llm = pytest.mark.skipif(_llm_missing() is not None, reason=str(_llm_missing()))


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory):
    """llama-cpp-python's own OpenAI-compatible server with the packaged SmolLM2 GGUF, as a
    real subprocess on a free local port. Yields its base URL (…/v1)."""
    import subprocess
    import sys
    import time

    import httpx

    from qa.generators.llamacpp import packaged_model_path

    reason = _llm_missing()
    if reason:
        pytest.skip(reason)
    port = free_port()
    log = open(tmp_path_factory.mktemp("llama-server") / "server.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(packaged_model_path()), "--host", "127.0.0.1",
         "--port", str(port), "--n_ctx", "2048", "--model_alias", "smollm2", "--verbose", "false"],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"},
    )
    base_url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 90
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited with {proc.returncode}; see {log.name}")
            try:
                if httpx.get(f"{base_url}/models", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"llama_cpp.server did not start in 90 s; see {log.name}")
            time.sleep(0.3)
        yield base_url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
