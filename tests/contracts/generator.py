"""The contract every :class:`citeqa.qa.types.Generator` passes, whatever model is behind it.

A generator's test class subclasses :class:`GeneratorContract` and provides the
``generator`` fixture. Passages are real: the seed article and an Eiffel Tower note,
ingested with the real model (:func:`open_generator_corpus`, served as the
``generator_corpus`` fixture by tests/qa/conftest.py), so whatever a generator writes is
verified against a real store and every returned citation must keep the contract.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import pytest

from citeqa.index.embedded_store import EmbeddedStore
from citeqa.index.ingest import DocumentInput, Ingestor, read_inputs
from citeqa.index.retriever import HybridRetriever
from citeqa.index.types import Embedder
from citeqa.qa.citations import SupportScorer, verify
from citeqa.qa.types import ChatTurn, Draft, DraftStream, GeneratorOptions, Passage
from tests.support.corpus import SEEDS_DIR, TROOPS_QUESTION

EIFFEL = ("The Eiffel Tower is 330 metres tall. It was completed in 1889 for the World's Fair. "
          "About seven million people visit it every year.")


class GeneratorCorpus(NamedTuple):
    store: EmbeddedStore
    retriever: HybridRetriever


def open_generator_corpus(folder: Path, embedder: Embedder) -> GeneratorCorpus:
    """The Eiffel note and the seed article, ingested into a new store in ``folder``."""
    store = EmbeddedStore(folder, embedder.dimension)
    ingestor = Ingestor(store, embedder)
    ingestor.ingest(DocumentInput(text=EIFFEL, doc_id="eiffel", title="Eiffel Tower"))
    ingestor.ingest_many(read_inputs([SEEDS_DIR]))
    return GeneratorCorpus(store, HybridRetriever(store, embedder))


def passages_for(corpus: GeneratorCorpus, question: str, k: int = 5) -> list[Passage]:
    store, retriever = corpus
    return [Passage(number=i, hit=h, title=store.document(h.sentence.doc_id, h.sentence.doc_version).title)
            for i, h in enumerate(retriever.search(question, k), start=1)]


def assert_verified_contract(draft: Draft, passages: list[Passage], store, embedder, question: str) -> None:
    result = verify(draft, passages, store, 0.5, SupportScorer(embedder, question), attribute=True)
    shown = passages if draft.shown is None else passages[:draft.shown]
    for c in result.citations:
        doc = store.document(c.doc_id, c.doc_version)
        assert doc.text[c.start:c.end] == c.quote
        assert c.sentence_id in {p.sentence.id for p in shown}
        assert 0 <= c.answer_start < c.answer_end <= len(result.answer)
        assert f"[{c.marker}]" in result.answer
    assert (result.status == "unsupported") == (not result.citations)


class GeneratorContract:
    # Generators with a context window must cut long input to fit it.
    has_context_window = True

    @pytest.fixture
    def generator(self):
        raise NotImplementedError

    def test_is_a_generator(self, generator):
        assert isinstance(generator.name, str) and generator.name
        assert isinstance(generator.description, str) and generator.description
        assert issubclass(generator.Options, GeneratorOptions)
        assert generator.unavailable() is None
        with pytest.raises(ValueError):
            generator.Options.model_validate({"no_such_option": 1})

    def test_generate_drafts_an_answer_that_verifies(self, generator, generator_corpus, embedder):
        passages = passages_for(generator_corpus, TROOPS_QUESTION)
        draft = generator.generate(TROOPS_QUESTION, passages)
        assert isinstance(draft, Draft)
        assert draft.text.strip() or draft.declined
        assert draft.shown is None or 1 <= draft.shown <= len(passages)
        assert_verified_contract(draft, passages, generator_corpus.store, embedder, TROOPS_QUESTION)

    def test_stream_joins_to_the_same_answer(self, generator, generator_corpus):
        passages = passages_for(generator_corpus, "How tall is the Eiffel Tower?")
        whole = generator.generate("How tall is the Eiffel Tower?", passages)
        stream = generator.stream("How tall is the Eiffel Tower?", passages)
        assert isinstance(stream, DraftStream)
        pieces = list(stream)
        assert pieces and all(isinstance(p, str) and p for p in pieces)
        assert "".join(pieces) == stream.draft().text == whole.text  # temperature 0 is greedy

    def test_closing_a_stream_early_stops_it_and_frees_the_generator(self, generator, generator_corpus):
        passages = passages_for(generator_corpus, TROOPS_QUESTION)
        stream = generator.stream(TROOPS_QUESTION, passages)
        first = next(iter(stream))
        stream.close()
        assert stream.draft().text == first
        # The model (or upstream connection) is free again at once.
        assert generator.generate(TROOPS_QUESTION, passages).text

    def test_no_passages_is_declined_without_calling_a_model(self, generator):
        draft = generator.generate(TROOPS_QUESTION, [])
        assert draft.declined and draft.text == ""

    def test_history_is_taken_into_account_without_error(self, generator, generator_corpus, embedder):
        passages = passages_for(generator_corpus, "How many were wounded?")
        history = [ChatTurn("user", TROOPS_QUESTION), ChatTurn("assistant", "About 11,000 to 12,000 [1]."),
                   ChatTurn("user", "")]
        draft = generator.generate("How many were wounded?", passages, history)
        assert draft.text.strip() or draft.declined
        assert_verified_contract(draft, passages, generator_corpus.store, embedder, "How many were wounded?")

    def test_long_input_is_cut_to_the_context_window(self, generator, generator_corpus, embedder):
        passages = passages_for(generator_corpus, TROOPS_QUESTION, k=40)
        # 40 passages, a long history and a long question: far more than 2,048 tokens.
        history = [ChatTurn("user" if i % 2 == 0 else "assistant", "Tell me more about the troops. " * 60)
                   for i in range(12)]
        question = TROOPS_QUESTION + " " + "Please be precise. " * 300
        draft = generator.generate(question, passages, history, generator.Options.model_validate({}))
        if self.has_context_window:
            assert draft.shown is not None and 1 <= draft.shown < len(passages)
        assert_verified_contract(draft, passages, generator_corpus.store, embedder, TROOPS_QUESTION)
