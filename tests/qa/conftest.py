"""Fixtures of the qa tests: the seed article as the service stores it, the generator contract's corpus."""

from __future__ import annotations

from contextlib import closing

import pytest

from tests.contracts.generator import open_generator_corpus
from tests.support.corpus import SEEDS_DIR


@pytest.fixture(scope="session")
def generator_corpus(tmp_path_factory, embedder):
    """The generator contract's corpus: the seed article and an Eiffel Tower note."""
    corpus = open_generator_corpus(tmp_path_factory.mktemp("generators"), embedder)
    yield corpus
    corpus.store.close()


@pytest.fixture(scope="module")
def seeded(tmp_path_factory, embedder):
    """The seed article in a real embedded store, analysed at ingest as ``citeqa serve`` does
    (each sentence's entities and noun chunks), which the ranker's answer-type features and
    the asked-kind check read."""
    from citeqa.index.embedded_store import EmbeddedStore
    from citeqa.index.ingest import Ingestor, read_inputs
    from citeqa.index.language import shared_analyzer

    with closing(EmbeddedStore(tmp_path_factory.mktemp("seeded-analysed"), embedder.dimension)) as store:
        Ingestor(store, embedder, shared_analyzer()).ingest_many(read_inputs([SEEDS_DIR]))
        yield store
