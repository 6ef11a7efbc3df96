"""The learned ranker's features, on the seed article with the real model and real retrieval."""

from __future__ import annotations

import math

import pytest

from citeqa.index.retriever import HybridRetriever
from citeqa.index.types import Mention, Sentence
from citeqa.qa.ranking.features import (
    FEATURES,
    answer_type_of,
    candidate_features,
    neighbours_from,
    pooled_documents,
    question_terms,
    terms,
)
from tests.support.corpus import TROOPS_QUESTION

TROOPS_FACT = "11,000 to 12,000"


@pytest.fixture(scope="module")
def troops_candidates(seeded, embedder):
    retriever = HybridRetriever(seeded, embedder)
    pool = retriever.pool(TROOPS_QUESTION)
    near = neighbours_from(seeded.current_sentences(pooled_documents(pool)))
    return candidate_features(TROOPS_QUESTION, pool, near, answer_type_of(TROOPS_QUESTION))


def test_every_candidate_has_every_feature_as_a_finite_number(troops_candidates):
    assert len(troops_candidates) > 5
    for c in troops_candidates:
        assert set(c.features) == set(FEATURES)
        assert all(math.isfinite(v) for v in c.features.values()), c.features


def test_the_answering_sentence_covers_the_question_better_than_most(troops_candidates):
    [troops] = [c for c in troops_candidates if TROOPS_FACT in c.hit.sentence.text]
    others = [c.features["coverage"] for c in troops_candidates if c is not troops]
    # "troops", "North Korea", "send" ("sent" shares the prefix "sent"? no: only the first two)
    assert troops.features["coverage"] >= sorted(others)[len(others) // 2]
    assert troops.features["coverage_context"] >= troops.features["coverage"]
    assert troops.features["coverage_gap"] <= 0.0
    assert troops.features["cosine_gap"] <= 0.0
    assert max(c.features["cosine_gap"] for c in troops_candidates) == 0.0


def test_relative_features_are_normalised_per_question(troops_candidates):
    for name in ("lexical", "document", "dense_rank", "lexical_rank", "document_rank"):
        values = [c.features[name] for c in troops_candidates]
        assert all(0.0 <= v <= 1.0 for v in values), name
        assert max(values) == pytest.approx(1.0), name


def test_a_number_question_finds_its_answer_type_in_the_troops_sentence(troops_candidates):
    [troops] = [c for c in troops_candidates if TROOPS_FACT in c.hit.sentence.text]
    if not troops.hit.sentence.analysed:
        pytest.skip("the seeded store holds no mentions (ingested without an analyzer)")
    assert troops.features["answer_type"] == 1.0


def test_answer_type_reads_stored_mentions_and_ignores_questions_without_a_type():
    text = "Pyongyang sent about 11,000 troops to Kursk."
    number = text.index("11,000")
    sentence = Sentence("d", "v", 0, 0, len(text), text, mentions=(Mention(number, number + 6, "CARDINAL"),))
    bare = Sentence("d", "v", 1, 0, len(text), text)
    match = answer_type_of("How many troops were sent?")
    assert match is not None
    assert match(sentence) == 1.0 and match(bare) == 0.0
    assert answer_type_of("Why did they go?") is None


def test_neighbours_are_the_previous_and_next_sentence_of_the_same_version():
    sentences = [Sentence("d", "v", i, 0, 1, t) for i, t in enumerate(["First.", "Second.", "Third."])]
    near = neighbours_from(sentences + [Sentence("d", "old", 1, 0, 1, "Stale.")])
    assert near(sentences[1]) == ["First.", "Third."]
    assert near(sentences[0]) == ["Second."]


def test_rare_question_words_weigh_more_and_missing_ones_count_against_every_candidate():
    pool = [terms("The army marched north."), terms("The army rested."), terms("Kursk lies west.")]
    asked = question_terms("Did the army reach Kursk in winter?", pool)
    assert asked.weights["kursk"] > asked.weights["army"]
    assert asked.unseen > 0  # "reach" and "winter" are in no candidate
    assert asked.coverage(terms("The army reached Kursk in winter.")) == pytest.approx(1.0)
    assert 0 < asked.coverage(pool[2]) < 1
