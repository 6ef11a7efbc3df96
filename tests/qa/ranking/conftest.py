"""The ranking tests read the seed article as the service stores it: analysed at ingest."""

from __future__ import annotations

from contextlib import closing

import pytest

from tests.support.corpus import SEEDS_DIR


@pytest.fixture(scope="module")
def seeded(tmp_path_factory, embedder):
    """The seed article in a real embedded store with each sentence's entities and noun
    chunks (spaCy, as ``citeqa serve`` ingests), which the answer-type features read."""
    from citeqa.index.embedded_store import EmbeddedStore
    from citeqa.index.ingest import Ingestor, read_inputs
    from citeqa.index.language import shared_analyzer

    with closing(EmbeddedStore(tmp_path_factory.mktemp("seeded-analysed"), embedder.dimension)) as store:
        Ingestor(store, embedder, shared_analyzer()).ingest_many(read_inputs([SEEDS_DIR]))
        yield store
