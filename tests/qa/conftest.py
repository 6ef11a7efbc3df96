"""Fixtures of the qa tests: real embedded stores holding the seed article."""

from __future__ import annotations

import pytest

from citeqa.index.embedded_store import EmbeddedStore
from citeqa.index.ingest import Ingestor, read_inputs
from tests.contracts.generator import open_generator_corpus
from tests.support.corpus import SEEDS_DIR


@pytest.fixture(scope="module")
def seeded(tmp_path_factory, embedder):
    store = EmbeddedStore(tmp_path_factory.mktemp("answer"), embedder.dimension)
    Ingestor(store, embedder).ingest_many(read_inputs([SEEDS_DIR]))
    yield store
    store.close()


@pytest.fixture(scope="session")
def generator_corpus(tmp_path_factory, embedder):
    """The generator contract's corpus: the seed article and an Eiffel Tower note."""
    corpus = open_generator_corpus(tmp_path_factory.mktemp("generators"), embedder)
    yield corpus
    corpus.store.close()
