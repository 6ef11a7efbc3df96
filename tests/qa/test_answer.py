"""QuestionAnswerer end to end on the seed article: retrieve → abstain or draft → verify."""

from __future__ import annotations

import pytest

from index.embedded_store import EmbeddedStore
from index.ingest import Ingestor, read_inputs
from index.retriever import HybridRetriever, RetrievalSettings
from qa import registry
from qa.answer import NO_ANSWER, AnswerSettings, QuestionAnswerer
from qa.generators.extractive import ExtractiveGenerator
from tests.conftest import SEEDS_DIR, TROOPS_QUESTION, UNSUPPORTED_QUESTION
from tests.qa.scripted import ScriptedGenerator

TROOPS_FACT = "11,000 to 12,000"


@pytest.fixture(scope="module")
def seeded(tmp_path_factory, embedder):
    store = EmbeddedStore(tmp_path_factory.mktemp("answer"), embedder.dimension)
    Ingestor(store, embedder).ingest_many(read_inputs([SEEDS_DIR]))
    yield store
    store.close()


def answerer(store, embedder, generator=None, fusion="blend", **settings) -> QuestionAnswerer:
    """An answerer whose default generator is ``generator`` (extractive if None). Verifier
    attribution is off unless asked for, so tests see exactly what the generator cited."""
    retriever = HybridRetriever(store, embedder, RetrievalSettings(fusion=fusion))
    generator = generator or ExtractiveGenerator()
    pool = registry.GeneratorPool(generator.name, instances={generator.name: generator})
    settings.setdefault("attribute_uncited", False)
    return QuestionAnswerer(retriever, store, pool, AnswerSettings(**settings), embedder)


@pytest.mark.parametrize("fusion", ["blend", "rrf"])
def test_troops_question_is_answered_with_one_exact_citation(seeded, embedder, fusion):
    result = answerer(seeded, embedder, fusion=fusion).ask(TROOPS_QUESTION, top_k=5)
    assert result.status == "answered"
    assert result.dropped_citations == 0
    [citation] = result.citations
    assert TROOPS_FACT in citation.quote
    assert TROOPS_FACT in result.answer
    doc = seeded.document(citation.doc_id, citation.doc_version)
    assert doc.text[citation.start:citation.end] == citation.quote
    assert citation.doc_id == "seed-russia-north-korea"
    index = int(citation.sentence_id.rsplit(":", 1)[1])
    sentence = seeded.sentences(citation.doc_id, citation.doc_version)[index]
    assert (sentence.start, sentence.end, sentence.text) == (citation.start, citation.end, citation.quote)
    assert result.answer[citation.answer_start:citation.answer_end] == citation.quote
    assert result.answer.endswith(f" [{citation.marker}]")
    assert citation.marker == 1
    assert citation.support == 1.0


def test_unsupported_question_abstains_without_calling_the_generator(seeded, embedder):
    generator = ScriptedGenerator("Tungsten boils at 5,555 degrees Celsius [1].")
    result = answerer(seeded, embedder, generator).ask(UNSUPPORTED_QUESTION, top_k=5)
    assert result.status == "unsupported"
    assert result.citations == []
    assert result.answer == NO_ANSWER
    assert generator.calls == []  # abstained on retrieval evidence alone
    assert {"embed", "retrieve", "total"} <= set(result.timings_ms)


def test_unsupported_question_with_the_extractive_generator(seeded, embedder):
    result = answerer(seeded, embedder).ask(UNSUPPORTED_QUESTION, top_k=5)
    assert (result.status, result.citations, result.answer) == ("unsupported", [], NO_ANSWER)


def test_timings_are_reported(seeded, embedder):
    result = answerer(seeded, embedder).ask(TROOPS_QUESTION, top_k=5)
    assert set(result.timings_ms) == {"embed", "retrieve", "generate", "verify", "total"}
    assert all(v >= 0 for v in result.timings_ms.values())
    parts = sum(v for k, v in result.timings_ms.items() if k != "total")
    assert result.timings_ms["total"] == pytest.approx(parts, abs=0.05)  # parts are rounded
    assert result.timings_ms["embed"] > 0 and result.timings_ms["retrieve"] > 0


def test_min_similarity_controls_abstention(seeded, embedder):
    strict = answerer(seeded, embedder, min_similarity=0.99).ask(TROOPS_QUESTION, top_k=5)
    assert strict.status == "unsupported" and strict.citations == []
    lax = answerer(seeded, embedder, min_similarity=-1.0).ask(UNSUPPORTED_QUESTION, top_k=5)
    # Nothing stops the extractive generator now; it cites a real sentence verbatim.
    assert lax.status == "answered" and len(lax.citations) == 1


def troops_passage_number(seeded, embedder, top_k: int) -> int:
    """The number the troops sentence gets among the passages shown to a generator."""
    probe = ScriptedGenerator("", declined=True)
    answerer(seeded, embedder, probe).ask(TROOPS_QUESTION, top_k=top_k)
    [(question, passages)] = probe.calls
    assert question == TROOPS_QUESTION
    assert [p.number for p in passages] == list(range(1, top_k + 1))
    return next(p.number for p in passages if TROOPS_FACT in p.sentence.text)


def test_generator_citing_the_right_passage_is_answered(seeded, embedder):
    number = troops_passage_number(seeded, embedder, 5)
    generator = ScriptedGenerator(f"Kim Jong Un dispatched approximately 11,000 to 12,000 elite troops [{number}].")
    result = answerer(seeded, embedder, generator).ask(TROOPS_QUESTION, top_k=5)
    assert result.status == "answered"
    assert result.dropped_citations == 0
    assert result.answer == "Kim Jong Un dispatched approximately 11,000 to 12,000 elite troops [1]."
    [citation] = result.citations
    assert TROOPS_FACT in citation.quote and citation.quote != result.answer
    assert seeded.document(citation.doc_id, citation.doc_version).text[citation.start:citation.end] == citation.quote


def test_invented_marker_from_a_generator_is_dropped_and_answer_is_partial(seeded, embedder):
    number = troops_passage_number(seeded, embedder, 5)
    generator = ScriptedGenerator(
        f"Approximately 11,000 to 12,000 elite troops were dispatched [{number}]. They flew to Mars [99]."
    )
    result = answerer(seeded, embedder, generator).ask(TROOPS_QUESTION, top_k=5)
    assert result.status == "partial"
    assert result.dropped_citations == 1
    assert result.answer == "Approximately 11,000 to 12,000 elite troops were dispatched [1]. They flew to Mars."
    assert [c.marker for c in result.citations] == [1]


def test_only_invented_markers_give_unsupported_with_the_count(seeded, embedder):
    generator = ScriptedGenerator("Elite troops were dispatched [42]. Many of them [43].")
    result = answerer(seeded, embedder, generator).ask(TROOPS_QUESTION, top_k=5)
    assert (result.status, result.citations, result.answer) == ("unsupported", [], NO_ANSWER)
    assert result.dropped_citations == 2


def test_declining_generator_gives_unsupported(seeded, embedder):
    result = answerer(seeded, embedder, ScriptedGenerator("", declined=True)).ask(TROOPS_QUESTION, top_k=5)
    assert (result.status, result.citations, result.answer) == ("unsupported", [], NO_ANSWER)


def test_extractive_generator_comes_from_the_registry(seeded, embedder):
    assert "extractive" in registry.available()
    generator = registry.create("extractive")
    result = answerer(seeded, embedder, generator).ask(TROOPS_QUESTION, top_k=5)
    assert result.status == "answered" and TROOPS_FACT in result.citations[0].quote
    with pytest.raises(TypeError):
        registry.create("extractive", temperature=0.5)
    with pytest.raises(registry.UnknownGenerator):
        registry.create("no-such-generator")
