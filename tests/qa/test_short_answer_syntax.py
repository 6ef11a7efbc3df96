"""Short answers that read the syntactic roles stored at ingest (index/language.py): the phrase
in the role the question asks for, the whole noun phrase around an adjective entity, and the
same answers as before for sentences stored without the roles (real spaCy throughout)."""

from __future__ import annotations

import pytest

from citeqa.evaluation.short_answers import without_syntax
from citeqa.index.language import SYNTAX_PREFIX, shared_analyzer
from citeqa.index.types import Hit, Mention, Sentence
from citeqa.qa.answer import short_answer
from citeqa.qa.short_answer import candidates, extract_short_answer
from citeqa.qa.types import Citation, Passage

SHAPE = ("The tension from the ongoing conflict in Ukraine and its reverberations in regional geopolitics "
         "continues to shape the dynamics between North Korea and Russia.")
TROOPS = ("Kim Jong Un’s leadership has reportedly dispatched approximately 11,000 to 12,000 elite troops to "
          "assist in the conflict, raising concerns in Western nations that North Korean forces could gain "
          "invaluable battlefield experience as a result.")
DIPLOMAT = ("Recent statements from a Russian diplomat highlight a notable development in the ties between "
            "Russia and North Korea.")


@pytest.fixture(scope="module")
def analyzer():
    return shared_analyzer()


def answer(analyzer, question: str, sentence: str, syntax: bool = True) -> str | None:
    found = analyzer.mentions([sentence])[0]
    span = extract_short_answer(question, sentence, found if syntax else without_syntax(found),
                                analyzer.question_doc(question))
    return None if span is None else sentence[span[0]:span[1]]


def test_the_subject_of_the_questions_verb_answers_what_does_it(analyzer):
    # "what is shaping ...?" asks for the subject of "shape", which it borrows from "continues".
    got = answer(analyzer, "what is shaping relations between north korea and russia", SHAPE)
    assert got is not None and "tension" in got and "dynamics" not in got


def test_the_noun_phrase_an_entity_modifies_answers_who(analyzer):
    # "Western" (NORP) only modifies "nations": who is concerned is the nations.
    got = answer(analyzer, "who is concerned about the north korean troops", TROOPS)
    assert got is not None and got.endswith("nations") and "Western" in got
    assert answer(analyzer, "who is concerned about the north korean troops", TROOPS, syntax=False) == "Western"


def test_a_count_that_modifies_its_noun_still_answers_how_many(analyzer):
    # "approximately 11,000 to 12,000 elite troops": a number modifier is the count asked for.
    got = answer(analyzer, "how many troops did north korea send?", TROOPS)
    assert got is not None and "11,000" in got and "troops" not in got


WORKERS = ("Furthermore, reports suggest a significant rise in the number of North Koreans entering Russia for "
           "work, with a recent estimate indicating over 13,000 crossings in 2024.")


def test_how_many_is_answered_by_a_count_where_the_sentence_holds_one(analyzer):
    # "a significant rise" sits among the question's words, "over 13,000" further off: the count wins.
    assert answer(analyzer, "how many north koreans are in russia", WORKERS) == "over 13,000"
    # Asked otherwise, the count has no such precedence.
    assert answer(analyzer, "what is happening to the number of north koreans in russia", WORKERS) != "over 13,000"


def test_a_phrase_ending_on_the_asked_class_is_marked(analyzer):
    question = "What gorge is between Bingen and Bonn?"
    sentence = "Between Bingen and Bonn, the Middle Rhine flows through the Rhine Gorge, a formation made by erosion."
    _, cands = candidates(question, sentence, analyzer.mentions([sentence])[0], analyzer.question_doc(question))
    marked = {sentence[a:b] for a, b, feats in cands if feats["class_end"]}
    assert "Rhine Gorge" in marked and "Gorge" not in marked
    assert not any(m.endswith("Rhine") for m in marked)


def test_without_the_roles_the_answer_is_what_it_was(analyzer):
    # Sentences stored before the roles were: the answer comes from entities and noun chunks
    # alone, as before (the roles are what finds the subject).
    question = "what is shaping relations between north korea and russia"
    before = answer(analyzer, question, SHAPE, syntax=False)
    assert before is not None and "tension" not in before


def test_an_adjective_entity_gives_way_to_its_noun_phrase_for_who(analyzer):
    # "Russian" (NORP) only modifies "diplomat": who made the statements is the diplomat.
    got = answer(analyzer, "who made the recent statements?", DIPLOMAT)
    assert got is not None and got.endswith("diplomat") and "Russian" in got
    assert answer(analyzer, "who made the recent statements?", DIPLOMAT, syntax=False) == "Russian"


def test_malformed_role_labels_are_ignored():
    sentence = "Marie Curie moved to Paris in 1891."
    odd = [Mention(0, 11, f"{SYNTAX_PREFIX}subj"), Mention(0, 11, f"{SYNTAX_PREFIX}subj:x"),
           Mention(0, 11, f"{SYNTAX_PREFIX}subj:999"), Mention(0, 11, f"{SYNTAX_PREFIX}subj:3"),
           Mention(21, 26, f"{SYNTAX_PREFIX}prep:-4"), Mention(0, 11, "PERSON")]
    span = extract_short_answer("Who moved to Paris?", sentence, odd)
    assert span is not None and sentence[span[0]:span[1]] == "Marie Curie"


def test_short_answers_from_roles_keep_the_citation_contract(analyzer):
    # Through qa/answer.py: document offsets, and the document's text at them is the answer.
    prefix = "An earlier sentence of the article. "
    text = prefix + SHAPE
    found = tuple(analyzer.mentions([SHAPE])[0])
    assert any(m.label.startswith(SYNTAX_PREFIX) for m in found)
    stored = Sentence("doc", "v1", 1, len(prefix), len(text), SHAPE, mentions=found, analysed=True)
    citation = Citation(1, stored.id, "doc", "v1", stored.start, stored.end, SHAPE, 0, 1, 1.0, 1.0)
    passages = [Passage(number=1, hit=Hit(stored, 1.0), title="")]
    for question in ("what is shaping relations between north korea and russia",
                     "what does the conflict shape?", "who is shaping the dynamics?"):
        short = short_answer(question, citation, passages, analyzer.question_doc(question))
        assert short is not None
        assert text[short.start:short.end] == short.text
        assert stored.start <= short.start < short.end <= stored.end


PUBLISHED = ("This information came to light during a comprehensive interview published by the state-run "
             "outlet Rossiyskaya Gazeta.")
TEACHERS = ("There are allegations from the NIS that Pyongyang and Moscow are manipulating student visa "
            "programs as a means to covertly send workers to Russia.")


@pytest.mark.parametrize("syntax", [True, False])
@pytest.mark.parametrize("question, sentence", [
    ("when was the interview published?", PUBLISHED),  # the best span was "light"
    ("In what year was the interview published?", PUBLISHED),
    ("how many teachers is north korea sending", TEACHERS),  # the best span was "workers"
    ("How much do the workers earn?", TEACHERS),
])
def test_a_count_or_date_question_gets_no_short_answer_of_another_kind(analyzer, question, sentence, syntax):
    # The sentence still has a best span (it would be the lead's score), but none that is a
    # count or a date: a reader is better served by no short answer than by "light".
    assert candidates(question, sentence)[1]
    assert answer(analyzer, question, sentence, syntax) is None


@pytest.mark.parametrize("question, sentence, expected", [
    ("how many troops did north korea send?", TROOPS, "approximately 11,000 to 12,000"),
    ("When was the interview published?", "The interview was published on 12 March 2024 by the outlet.",
     "12 March 2024"),
    ("When was the interview published?", "The interview was published last week by the outlet.", "last week"),
    # A word the question holds is still an answer of the asked kind.
    ("How many of the following three drives ended in punts?", "All three drives ended in punts.", "three"),
])
def test_a_count_or_date_question_keeps_its_short_answer_of_that_kind(analyzer, question, sentence, expected):
    got = answer(analyzer, question, sentence)
    assert got is not None and expected in got


SVO = "The term “SVO” refers to the Kremlin’s characterization of the war in Ukraine as a “special military operation.”"


@pytest.mark.parametrize("question", ["what is the svo?", "What is SVO?"])
def test_what_x_is_is_not_the_noun_that_names_x(analyzer, question):
    # "The term" stands next to "SVO" and shares the sentence's clause with it, but it is SVO
    # itself, not what SVO is.
    got = answer(analyzer, question, SVO)
    assert got is not None and "term" not in got.lower() and "characterization" in got


ALLIANCE = ("This development underscores the strengthening alliance between Russian President Vladimir Putin "
            "and North Korean leader Kim Jong Un.")


@pytest.mark.parametrize("question, title", [
    ("who is kim jong un", "North Korean leader"),  # it was "Vladimir Putin": another person
    ("Who is Putin?", "Russian President"),  # "Vladimir" is part of the name, not of the title
])
def test_who_is_x_is_answered_by_the_title_before_the_name(analyzer, question, title):
    assert answer(analyzer, question, ALLIANCE) == title


def test_the_question_verb_is_not_part_of_the_class_asked_for(analyzer):
    # "what newspaper published ...": the class is "newspaper"; "published" is the verb (the
    # tagger says so), so "comprehensive" (right before "interview published") is not taken
    # for the kind of newspaper.
    sentence = ("This information came to light during a comprehensive interview published by the state-run "
                "outlet Rossiyskaya Gazeta.")
    got = answer(analyzer, "what newspaper published the interview", sentence)
    assert got is not None and "Rossiyskaya Gazeta" in got


@pytest.mark.parametrize("question", ["who runs north korea", "Who leads North Korea?"])
def test_the_person_the_questions_words_describe_answers_who(analyzer, question):
    # "North Korean leader Kim Jong Un": the question's words describe the name that ends their
    # noun phrase; "Vladimir Putin" only stands before them.
    assert answer(analyzer, question, ALLIANCE) == "Kim Jong Un"
