"""Fixtures of the qa tests: the seed article in a real embedded store."""

from __future__ import annotations

import pytest

from citeqa.index.embedded_store import EmbeddedStore
from citeqa.index.ingest import Ingestor, read_inputs
from tests.support.corpus import SEEDS_DIR


@pytest.fixture(scope="module")
def seeded(tmp_path_factory, embedder):
    store = EmbeddedStore(tmp_path_factory.mktemp("answer"), embedder.dimension)
    Ingestor(store, embedder).ingest_many(read_inputs([SEEDS_DIR]))
    yield store
    store.close()
