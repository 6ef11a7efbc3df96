"""The learned ranker's features, on the seed article with the real model and real retrieval."""

from __future__ import annotations

import math
import re

import pytest

from citeqa.index.retriever import CandidatePool, HybridRetriever, Pooled, RetrievalSettings
from citeqa.index.types import Hit, Mention, Sentence
from citeqa.qa.ranking.features import (
    FEATURES,
    acronyms,
    answer_type_of,
    candidate_features,
    key_terms,
    near_miss,
    neighbours_from,
    pool_neighbours,
    pooled_documents,
    question_terms,
    stem,
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


@pytest.mark.parametrize("documents", [0, 5])
def test_pool_neighbours_are_the_neighbours_of_the_current_sentences(seeded, embedder, documents):
    """Read as texts alone (and only those the pool lacks), the same neighbours as from
    the candidates' documents read whole; with documents=0 the fusion reads none whole."""
    reads = []

    class Counting:
        def __getattr__(self, name):
            return getattr(seeded, name)

        def searchable_texts(self, wanted):
            reads.append(list(wanted))
            return seeded.searchable_texts(wanted)

    pool = HybridRetriever(seeded, embedder, RetrievalSettings(documents=documents)).pool(TROOPS_QUESTION)
    assert bool(pool.read_documents) == bool(documents)
    expected = neighbours_from(seeded.current_sentences(pooled_documents(pool)))
    got = pool_neighbours(pool, Counting())  # type: ignore[arg-type]
    sentences = [p.hit.sentence for p in pool.items]
    assert [got(s) for s in sentences] == [expected(s) for s in sentences]
    assert any(len(got(s)) == 2 for s in sentences)
    held = {(s.doc_id, s.index) for s in sentences}
    [wanted] = reads
    assert not held & set(wanted)  # a candidate's own text is not read again
    if documents:  # every candidate's document was read whole by the fusion
        assert wanted == []


def test_every_candidate_has_every_feature_as_a_finite_number(troops_candidates):
    assert len(troops_candidates) > 5
    for c in troops_candidates:
        # The answer-type features only where the sentence was analysed at ingest.
        expected = set(FEATURES) - (set() if c.hit.sentence.analysed else {"answer_type", "type_coverage"})
        assert set(c.features) == expected
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


def test_acronyms_are_the_initials_of_multi_word_names():
    assert "isw" in acronyms("Analysts from the Institute for the Study of War in Washington")
    assert "nis" in acronyms("The South Korean National Intelligence Service has reported")
    assert acronyms("a sentence without names at all") == set()
    # A name spelled out covers the question's acronym, as a reader would match it.
    assert "nis" in terms("The South Korean National Intelligence Service has reported")


def _acronyms_word_by_word(text: str) -> set[str]:
    """The rule acronyms() implements, written plainly: runs of capitalised words (and the
    connectives inside them), every 3-6 consecutive initials of each run."""
    found: set[str] = set()
    run: list[str] = []
    for token in [*re.findall(r"\w+", text), ""]:
        if token and (token[0].isupper() or (run and token in ("of", "for", "the", "and", "on", "de"))):
            run.append(token)
            continue
        initials = [w[0].lower() for w in run if w[0].isupper()]
        n = len(initials)
        found |= {"".join(initials[i:j]) for i in range(n) for j in range(i + 3, min(n, i + 6) + 1)}
        run = []
    return found


@pytest.mark.parametrize("text", [
    "Analysts from the Institute for the Study of War in Washington",
    "Two Capital Words only", "A B", "The Royal Society of London for Improving Natural Knowledge and Arts",
    "États Unis d'Amérique Ünited", "İstanbul Ankara İzmir are cities", "de Gaulle and the Free French Forces",
    "x_Y Z W 3D Models", "Ⓐ Ⓑ Ⓒ D E", "ǅemal ǈubo Ǌ", "", "no names at all, only words",
])
def test_acronyms_follow_the_rule_word_by_word(text):
    assert acronyms(text) == _acronyms_word_by_word(text)


def test_one_typo_is_one_edit_but_other_words_are_not():
    assert near_miss("recie", "recei") and near_miss("compa", "compe") and near_miss("ambas", "amba")
    assert not near_miss("troop", "troop") and not near_miss("troop", "stoop") and not near_miss("north", "south")


def _pool(question: str, texts: list[str]) -> list[dict[str, float]]:
    sentences = [Sentence("d", "v", i, 0, len(t), t) for i, t in enumerate(texts)]
    pool = CandidatePool([Pooled(Hit(s, 0.5, dense_score=0.5)) for s in sentences])
    return [c.features for c in candidate_features(question, pool, neighbours_from(sentences))]


def test_a_misspelt_rare_word_still_covers_its_sentence():
    texts = ["Prices rose sharply last year.", "The shop gives no refunds.",
             "Customers receive a refund within a week."]
    misspelt = _pool("when do customers recieve refunds", texts)
    right = _pool("when do customers receive refunds", texts)
    assert misspelt[2]["coverage"] == pytest.approx(right[2]["coverage"])
    assert misspelt[2]["missing_terms"] == 0.0


def test_first_mention_and_rare_coverage_favour_where_a_name_is_introduced():
    texts = ["Talks resumed on Monday.", "Alexander Matsegora, the ambassador, spoke to reporters.",
             "Matsegora later left the room.", "Reporters waited outside."]
    features = _pool("who is matsegora", texts)
    assert features[1]["first_mention"] == 1.0 and features[2]["first_mention"] == 0.0
    assert features[1]["rare_coverage"] == features[2]["rare_coverage"] == 1.0
    assert features[0]["rare_coverage"] == features[3]["rare_coverage"] == 0.0


def test_the_measure_word_of_how_many_is_no_term_of_the_question():
    """"how many soldiers did they send": a sentence that says "many" does not say how many,
    and "many" weighed as a rare word (session 27: the NIS "many of the North Koreans ..."
    sentence ranked above "dispatched 11,000 to 12,000 elite troops")."""
    texts = ["Many of the soldiers were sent home.", "They dispatched 11,000 soldiers.", "The weather was mild."]
    features = _pool("how many soldiers did they send", texts)
    assert features[0]["coverage"] == pytest.approx(features[1]["coverage"])  # "soldiers" alone counts
    assert _pool("how long were the soldiers there", texts)[0]["coverage"] == 1.0  # "long" is no term either
    asked = _pool("why were so many soldiers sent", texts)  # "many" outside "how many" still is
    assert asked[0]["coverage"] > asked[1]["coverage"]


def test_a_light_verb_of_the_question_is_no_missing_word():
    """"why are soldiers going to korea": no sentence says "going", and a word in no candidate
    weighs most and pulls every coverage down (the seed question was refused, p 0.085)."""
    texts = ["Wounded soldiers are sent to Korea for recovery.", "The weather in Korea was mild."]
    features = _pool("why are the soldiers going to korea", texts)
    assert features[0]["missing_terms"] == 0.0 and features[0]["coverage"] == 1.0
    assert _pool("why are the soldiers marching to korea", texts)[0]["missing_terms"] > 0  # a real word is


def test_the_key_terms_are_the_longest_content_words():
    assert key_terms("What is the boiling point of tungsten?", 1) == [stem("tungsten")]
    assert key_terms("any internships?", 1) == [stem("internships")]
    assert key_terms("what is the ISW", 1) == ["isw"]
    assert key_terms("who is it?", 1) == []  # only stop words
    assert key_terms("what is the ISW", 1)[0] in terms("Analysts from the Institute for the Study of War in Washington")
    assert key_terms("is that more than in previous years?", 2) == [stem("previous"), stem("years")]


_FEATURES_UNDER_A_HASH_SEED = """
import json, sys
from citeqa.qa.ranking.features import question_terms, terms
pool = [terms(s) for s in json.loads(sys.argv[1])]
asked = question_terms(sys.argv[2], pool)
print(json.dumps([asked.total, asked.unseen] + [asked.coverage(p) for p in pool]
                 + [asked.coverage(a | b) for a, b in zip(pool, pool[1:])]))
"""


def test_features_are_the_same_whatever_the_hash_seed():
    # A set's order follows the string hash seed, which differs per process; a float sum
    # over it may differ in the last bit, and a ranker's ties break on such bits.
    import json
    import os
    import subprocess
    import sys

    pool = ["Between 11,000 and 12,000 North Korean troops were sent to Kursk in late 2024.",
            "Pyongyang's army doctors treated wounded Russian soldiers at a military hospital.",
            "The ambassador said troops, doctors and engineers would follow in the spring.",
            "Seoul's intelligence service counted casualties among the soldiers sent north."]
    question = "How many North Korean troops and army doctors were sent to treat soldiers in Kursk?"
    runs = {
        json.dumps(json.loads(subprocess.run(
            [sys.executable, "-c", _FEATURES_UNDER_A_HASH_SEED, json.dumps(pool), question],
            env={**os.environ, "PYTHONHASHSEED": str(seed)},
            capture_output=True, text=True, check=True).stdout))
        for seed in range(8)
    }
    assert len(runs) == 1, runs
