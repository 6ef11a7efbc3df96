"""A QuestionAnswerer over a seeded store, built the way the tests need it."""

from __future__ import annotations

from citeqa.index.retriever import HybridRetriever, RetrievalSettings
from citeqa.qa import registry
from citeqa.qa.answer import AnswerSettings, QuestionAnswerer
from citeqa.qa.generators.extractive import ExtractiveGenerator
from tests.support.corpus import TROOPS_QUESTION
from tests.support.scripted import ScriptedGenerator

TROOPS_FACT = "11,000 to 12,000"
TROOPS_CLAIM = "Kim Jong Un dispatched approximately 11,000 to 12,000 elite troops"


def answerer(store, embedder, generator=None, fusion="blend", **settings) -> QuestionAnswerer:
    """An answerer whose default generator is ``generator`` (extractive if None). Verifier
    attribution is off unless asked for, so tests see exactly what the generator cited."""
    retriever = HybridRetriever(store, embedder, RetrievalSettings(fusion=fusion))
    generator = generator or ExtractiveGenerator()
    pool = registry.GeneratorPool(generator.name, instances={generator.name: generator})
    settings.setdefault("attribute_uncited", False)
    return QuestionAnswerer(retriever, store, pool, AnswerSettings(**settings), embedder)


def troops_passage_number(seeded, embedder, top_k: int) -> int:
    """The number the troops sentence gets among the passages shown to a generator."""
    probe = ScriptedGenerator("", declined=True)
    answerer(seeded, embedder, probe).ask(TROOPS_QUESTION, top_k=top_k)
    [(question, passages)] = probe.calls
    assert question == TROOPS_QUESTION
    assert [p.number for p in passages] == list(range(1, top_k + 1))
    return next(p.number for p in passages if TROOPS_FACT in p.sentence.text)
