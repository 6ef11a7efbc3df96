"""Fixtures of the qa tests: the generator contract's corpus."""

from __future__ import annotations

import pytest

from tests.contracts.generator import open_generator_corpus


@pytest.fixture(scope="session")
def generator_corpus(tmp_path_factory, embedder):
    """The generator contract's corpus: the seed article and an Eiffel Tower note."""
    corpus = open_generator_corpus(tmp_path_factory.mktemp("generators"), embedder)
    yield corpus
    corpus.store.close()
