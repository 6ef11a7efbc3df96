"""The question's expected answer type, from its text and from its spaCy parse, and the
sentence-level match the ranker reads."""

from __future__ import annotations

import time

import pytest

from citeqa.index.language import shared_analyzer
from citeqa.qa.answer_types import (
    DATES,
    NUMBERS,
    PEOPLE,
    PLACES,
    expected_types,
    question_type,
    subject_text,
    type_match,
)

# (question, a label the answer carries, a label it does not)
TYPED = [
    ("Who is the Russian ambassador?", "PERSON", "CARDINAL"),
    ("whos russias ambasador in pyongyang", "PERSON", "DATE"),
    ("How many troops did North Korea send?", "CARDINAL", "PERSON"),
    ("how many troops?", "CARDINAL", "GPE"),
    ("How much did the bridge cost?", "MONEY", "PERSON"),
    ("When was penicillin discovered?", "DATE", "PERSON"),
    ("In what year did the war end?", "DATE", "CARDINAL"),
    ("Where is the Institute for the Study of War based?", "GPE", "PERSON"),
    ("Which cities will get North Korean teachers?", "GPE", "PERSON"),
    ("wich russian cities will get north korean teachers", "GPE", "NORP"),
    ("Which NFL team represented the NFC at Super Bowl 50?", "ORG", "DATE"),
    ("What is the tallest mountain in Africa?", "LOC", "PERSON"),
    ("What percentage of the land is forest?", "PERCENT", "DATE"),
    ("What language will the teachers teach?", "LANGUAGE", "GPE"),
    ("number of north korean troops sent to help russia??", "CARDINAL", "PERSON"),
]
# Questions whose answer is a phrase or description, not an entity of one type.
UNTYPED = [
    "Why was the match postponed?",
    "How did the committee raise the money?",
    "What did the committee approve?",
    "was the treatment free?",
    "who is matsegora",
    "What is the point of sending the educators?",
]


@pytest.fixture(scope="module")
def analyzer():
    return shared_analyzer()


@pytest.fixture(scope="module")
def nlp(analyzer):
    return analyzer.question_doc


@pytest.mark.parametrize(("question", "label", "other"), TYPED, ids=[t[0] for t in TYPED])
def test_expected_types_from_text_and_parse(nlp, question, label, other):
    for form in (question, nlp(question)):
        labels = expected_types(form)
        assert label in labels and other not in labels, (form, labels)


@pytest.mark.parametrize("question", UNTYPED)
def test_phrase_questions_expect_no_entity(nlp, question):
    assert expected_types(question) == frozenset()
    assert expected_types(nlp(question)) == frozenset()


def test_the_parse_finds_the_noun_past_adjectives(nlp):
    # Without a tagger "famous" could be the class; the parse knows "city" is the noun.
    question = "What famous city hosted the games?"
    assert question_type(nlp(question)).head == "city"
    assert expected_types(nlp(question)) & PLACES


def test_wh_word_families_are_distinct():
    assert expected_types("Who won?") == PEOPLE
    assert expected_types("When did it end?") == DATES
    assert expected_types("Where did it end?") == PLACES
    assert expected_types("How many were there?") <= NUMBERS


def test_plural_class_asks_for_a_list():
    assert question_type("Which cities will get teachers?").plural
    assert not question_type("Which city will get teachers?").plural


SENTENCE = ("Matsegora also disclosed plans for North Korean educators to be stationed in key Russian "
            "cities—including Moscow, Kazan, Novosibirsk, and Vladivostok.")


def test_type_match_needs_a_new_mention_of_the_type(analyzer):
    mentions = analyzer.mentions([SENTENCE])[0]
    assert type_match(expected_types("Which cities will get teachers?"), mentions, SENTENCE) == 1.0
    assert type_match(expected_types("How many teachers?"), mentions, SENTENCE) == 0.0
    assert type_match(frozenset(), mentions, SENTENCE) == 0.0
    # The only person in the sentence is the one the question names: a half match.
    person = expected_types("Who is Matsegora's deputy?")
    assert type_match(person, [m for m in mentions if m.label == "PERSON"
                               and SENTENCE[m.start:m.end] == "Matsegora"], SENTENCE,
                      "Who is Matsegora's deputy?") == 0.5


def test_type_match_is_fast(analyzer):
    mentions = analyzer.mentions([SENTENCE])[0]
    expected = expected_types("Which cities will get teachers?")
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(1000):
            type_match(expected, mentions, SENTENCE, "Which cities will get teachers?")
        best = min(best, (time.perf_counter() - t0) / 1000)
    assert best < 0.001, f"{best * 1000:.3f} ms per sentence"


@pytest.mark.parametrize(("question", "subject"), [
    ("how many troops?", "how troops?"),
    ("How much did the treatment cost", "How did the treatment cost"),
    ("how long do they stay", "how do they stay"),
    ("how did they reach it", "how did they reach it"),  # no measure word
    ("Howard many times", "Howard many times"),  # "how" as a whole word only
    ("what is so important about how many there are", "what is so important about how there are"),
    ("why are soldiers going to Korea", "why are soldiers  to Korea"),
    ("What happened at Kursk?", "What  at Kursk?"),
    ("Did they get paid?", "Did they  paid?"),
    ("who wrote the gospel of Gotten", "who wrote the gospel of Gotten"),  # capitalised: a name
    ("what does the NIS say about workers", "what does the NIS  about workers"),
    ("what does SVO mean", "what does SVO "),
    ("by what means of transport", "by what means of transport"),  # "means": a noun
])
def test_subject_text_drops_the_words_of_the_frame(question, subject):
    assert subject_text(question) == subject
