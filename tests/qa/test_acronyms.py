"""Abbreviations asked to be spelled out (qa/acronyms.py): which questions ask it, and which
sentences answer it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from citeqa.qa.acronyms import asked_abbreviation, explains, spells_out


@pytest.mark.parametrize("question, letters", [
    ("What does DPRK stand for?", "dprk"),
    ("what does nis stand for", "nis"),
    ("What does LGM stands for?", "lgm"),
    ("What is QED short for?", "qed"),
    ("whats the NIS short for", "nis"),
    ("What is the ISW an abbreviation of?", "isw"),
    ("What does U.N. stand for?", "un"),
])
def test_questions_that_ask_what_an_abbreviation_stands_for(question, letters):
    assert asked_abbreviation(question) == letters


@pytest.mark.parametrize("question", [
    "what does SVO mean",  # an apposition may answer it: not checked
    "what does love mean",
    "How many troops did North Korea send?",
    "what does the ambassador say about DPRK",
    "what do they stand for in the war",
    "what does labour stand for",  # a word in lower case, longer than an abbreviation
    "What does X stand for?",  # one letter spells nothing out
])
def test_other_questions_ask_no_abbreviation(question):
    assert asked_abbreviation(question) is None


@pytest.mark.parametrize("letters, text", [
    ("dprk", "officials of the Democratic People's Republic of Korea said"),
    ("fota", "the Festival of the Arts (FOTA) began"),
    ("nis", "The South Korean National Intelligence Service has reported"),
    ("isw", "the Institute for the Study of War, based in Washington"),
    ("svo", "The term “SVO” refers to the war in Ukraine as a “special military operation.”"),
])
def test_sentences_that_spell_it_out_or_say_what_it_means(letters, text):
    assert explains(letters, text)


@pytest.mark.parametrize("letters, text", [
    ("dprk", "Everything related to staying in the DPRK, all this was absolutely free."),
    ("svo", "Hundreds of wounded soldiers of the SVO are in Korean sanatoriums."),
    ("isw", "The institute said in a statement that the war goes on."),
    ("dprk", "The Democratic Party of Korea won."),  # D, P, K: the R is missing
])
def test_sentences_that_merely_use_it_do_not_explain_it(letters, text):
    assert not explains(letters, text)


_word = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=2, max_size=9).filter(
    lambda w: w not in {"of", "the", "for", "and", "on", "de", "du", "la", "in", "to", "an"})


@given(st.lists(_word, min_size=2, max_size=6), st.lists(_word, max_size=4), st.lists(_word, max_size=4))
def test_any_run_of_words_spells_out_its_initials_wherever_it_stands(name, before, after):
    letters = "".join(w[0] for w in name)
    text = " ".join([*before, *(w.capitalize() for w in name), *after]) + "."
    assert spells_out(letters, text)
    assert spells_out(letters, text.replace(" ", " of the ", 1)) or len(before) == 0
