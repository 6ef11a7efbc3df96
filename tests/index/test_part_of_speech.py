"""Coarse tags from the attribute ruler's own patterns (index/part_of_speech.py): the same tag
for every token as spaCy's ruler gives, on real text and on generated text, and the ruler's
precedence on patterns made here."""

from __future__ import annotations

import pytest
import spacy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spacy.tokens import Doc

from citeqa.index.language import RULER, load_pipeline
from citeqa.index.part_of_speech import compile_rules
from citeqa.index.sentences import split_sentences
from tests.support.corpus import SEEDS_DIR

# Words the ruler treats apart (auxiliaries, "that", "but", pronouns tagged as nouns,
# expletive "there", negations) among ordinary ones, for the generated texts.
WORDS = ("there is are was 's do does did have has had been being be that which this those but if "
         "not n't something nobody it they him the a cat dogs Paris ran runs said quickly well here "
         "once then 1891 , . ? and or").split()
TRICKY = [
    "There is a cat, and there were two dogs.",
    "I do not know what he did, but he does it well.",
    "The book that she had read was the one which they have.",
    "Something happened once; nobody said anything then.",
    "Do you have it?  Yes, we've had it since 1891.",
    "That is that.",
    "",
    "   ",
]


@pytest.fixture(scope="module")
def nlp():
    return load_pipeline()


def _pos_both_ways(nlp, texts):
    rules = compile_rules(nlp.get_pipe(RULER).patterns)
    assert rules is not None
    by_ruler = list(nlp.pipe(texts, disable=["lemmatizer", "ner"]))
    by_rules = list(nlp.pipe(texts, disable=["lemmatizer", "ner", RULER]))
    assert all(not t.pos_ for doc in by_rules for t in doc)  # the tagger alone sets no coarse tag
    rules.apply(by_rules)
    return [[t.pos_ for t in doc] for doc in by_ruler], [[t.pos_ for t in doc] for doc in by_rules]


def test_the_same_coarse_tags_as_the_ruler_on_real_text(nlp):
    text = next(SEEDS_DIR.glob("*.txt")).read_text(encoding="utf-8")
    texts = [text[s.start:s.end] for s in split_sentences(text)] + TRICKY
    expected, found = _pos_both_ways(nlp, texts)
    assert found == expected
    tags = {pos for doc in found for pos in doc}
    assert {"NOUN", "PROPN", "PRON", "VERB", "AUX", "SCONJ", "PART", "DET"} <= tags


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(st.sampled_from(WORDS), min_size=0, max_size=14).map(" ".join), min_size=1, max_size=6))
def test_the_same_coarse_tags_as_the_ruler_on_generated_text(nlp, texts):
    expected, found = _pos_both_ways(nlp, texts)
    assert found == expected


def _doc(words, tags, deps):
    # An English vocabulary: its lexemes know their lower-case forms.
    return Doc(spacy.blank("en").vocab, words=words, tags=tags, deps=deps, heads=[0] * len(words))


def test_a_later_pattern_overrides_an_earlier_one_and_two_token_patterns_stay_in_one_doc():
    rules = compile_rules([
        {"patterns": [[{"TAG": "NN"}]], "attrs": {"POS": "NOUN"}},
        {"patterns": [[{"TAG": "NN", "LOWER": {"IN": ["thing", "one"]}}]], "attrs": {"POS": "PRON"}},
        {"patterns": [[{"TAG": "XX"}]], "attrs": {"MORPH": "_"}},  # sets no coarse tag: left out
        {"patterns": [[{"DEP": "expl"}, {"LOWER": "is"}]], "attrs": {"POS": "VERB"}, "index": 1},
    ])
    assert rules is not None
    first = _doc(["Thing", "cat", "there"], ["NN", "NN", "EX"], ["ROOT", "dep", "expl"])
    second = _doc(["is", "there", "is"], ["VBZ", "EX", "VBZ"], ["ROOT", "expl", "dep"])
    rules.apply([first, second])
    assert [t.pos_ for t in first] == ["PRON", "NOUN", ""]
    # "there" ends the first doc and "is" opens the second: no match across them; inside, one.
    assert [t.pos_ for t in second] == ["", "", "VERB"]


@pytest.mark.parametrize("pattern", [
    {"patterns": [[{"ORTH": "x"}]], "attrs": {"POS": "X"}},  # an attribute it does not read
    {"patterns": [[{"TAG": "NN", "OP": "+"}]], "attrs": {"POS": "NOUN"}},
    {"patterns": [[{"TAG": {"REGEX": "^N"}}]], "attrs": {"POS": "NOUN"}},  # an operator it does not know
    {"patterns": [[{"TAG": "DT"}, {"TAG": "JJ"}, {"TAG": "NN"}]], "attrs": {"POS": "NOUN"}},  # three tokens
    {"patterns": [[{"TAG": "NN"}]], "attrs": {"POS": "NOT-A-TAG"}},
    {"patterns": [[{"TAG": "NN"}]], "attrs": {"POS": "NOUN"}, "index": 3},
])
def test_patterns_of_another_shape_leave_the_ruler_in_place(pattern):
    assert compile_rules([{"patterns": [[{"TAG": "NN"}]], "attrs": {"POS": "NOUN"}}, pattern]) is None
