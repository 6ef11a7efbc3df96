"""Which sentence leads the answer (qa/answer_lead.py): the ranker's probability and the best
short-answer span, with sentences analysed by the real language pipeline."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from citeqa.index.language import shared_analyzer
from citeqa.index.types import Hit, Sentence
from citeqa.qa.answer_lead import lead_score, with_lead
from citeqa.qa.short_answer import asks_for_a_name

ABOUT = "The championship game was played in a large stadium in front of a record crowd."
NAMES = "The Denver Broncos won the championship game after a late touchdown."
NOTHING = "..."  # no word: no span to answer with


def _hits(texts: list[str], probabilities: list[float]) -> list[Hit]:
    mentions = shared_analyzer().mentions(texts)
    return [Hit(Sentence("doc", "v1", i, 0, len(t), t, mentions=tuple(m), analysed=True), p)
            for i, (t, m, p) in enumerate(zip(texts, mentions, probabilities, strict=True))]


@pytest.fixture(scope="module")
def question_doc():
    return shared_analyzer().question_doc


def test_a_sentence_naming_what_is_asked_leads_one_merely_about_it(question_doc):
    question = "Which team won the championship game?"
    hits = _hits([ABOUT, NAMES], [0.45, 0.35])
    led = with_lead(question, hits, question_doc(question))
    assert [h.sentence.text for h in led] == [NAMES, ABOUT]
    # The scores the choice was made on: the ranker alone would have kept ABOUT first.
    assert lead_score(question, hits[1], question_doc(question), 0.25) > lead_score(
        question, hits[0], question_doc(question), 0.25)


def test_the_ranker_order_stands_without_the_weight_or_for_reasons_and_manners(question_doc):
    hits = _hits([ABOUT, NAMES], [0.45, 0.35])
    question = "Which team won the championship game?"
    assert with_lead(question, hits, question_doc(question), weight=0) == hits
    assert with_lead(question, hits, question_doc(question), among=1) == hits
    for asked in ("Why did the Broncos win the championship game?", "How was the championship game won?",
                  "What is the championship game?", "Did the Broncos win the championship game?"):
        assert not asks_for_a_name(asked)
        assert with_lead(asked, hits, question_doc(asked)) == hits


def test_a_far_likelier_sentence_keeps_the_lead(question_doc):
    question = "Which team won the championship game?"
    hits = _hits([ABOUT, NAMES], [0.95, 0.0001])
    assert with_lead(question, hits, question_doc(question)) == hits


def test_a_sentence_with_no_span_cannot_lead(question_doc):
    question = "Which team won the championship game?"
    hits = _hits([NOTHING, ABOUT], [0.9, 0.2])
    assert lead_score(question, hits[0], question_doc(question), 0.25) == -math.inf
    assert [h.sentence.text for h in with_lead(question, hits, question_doc(question))] == [ABOUT, NOTHING]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=0, max_size=6), st.integers(1, 4),
       st.floats(min_value=0.0, max_value=2.0))
def test_the_lead_only_moves_one_of_the_first_among_to_the_front(probabilities, among, weight):
    texts = [(ABOUT, NAMES, NOTHING)[i % 3] + (" " * i) for i in range(len(probabilities))]
    hits = _hits(texts, probabilities)
    question = "Which team won the championship game?"
    led = with_lead(question, hits, None, weight=weight, among=among)
    assert sorted(map(id, led)) == sorted(map(id, hits))  # a permutation: nothing lost or added
    if led:
        assert hits.index(led[0]) < max(1, among)
        assert [h for h in led[1:]] == [h for h in hits if h is not led[0]]  # the rest in order
