"""The extractive generator: the best-ranked sentence verbatim, no model."""

from __future__ import annotations

import pytest

from citeqa.index.types import Hit, Mention, Sentence
from citeqa.qa import registry
from citeqa.qa.generators.extractive import ExtractiveGenerator
from citeqa.qa.types import Passage
from tests.contracts.generator import GeneratorContract


class TestExtractive(GeneratorContract):
    has_context_window = False

    @pytest.fixture
    def generator(self):
        return registry.create("extractive")


def test_a_heading_yields_to_the_best_ranked_sentence():
    texts = ["North Korean Troops In Russia", "Pyongyang sent about 11,000 troops.", "They train in Kursk."]
    passages = [Passage(n, Hit(Sentence("d", "v", n - 1, 0, len(t), t), score=1.0 / n), "Title")
                for n, t in enumerate(texts, start=1)]
    draft = ExtractiveGenerator().generate("How many troops?", passages)
    assert (draft.text, draft.declined, draft.shown) == ("Pyongyang sent about 11,000 troops. [2]", False, None)


def _counted(text: str, number: str, score: float, index: int) -> Passage:
    at = text.index(number)
    sentence = Sentence("d", "v", index, 0, len(text), text, mentions=(Mention(at, at + len(number), "CARDINAL"),))
    return Passage(index + 1, Hit(sentence, score=score), "Title")


def test_two_sentences_counting_what_is_asked_are_both_cited():
    """"How many troops?" over an article with two counts of troops: the ranker splits its
    probability between them (the second stays under the 0.5 floor), yet a reader wants both."""
    passages = [_counted("The deal involves hundreds of troops.", "hundreds", 0.80, 0),
                _counted("Some 13,000 workers crossed the border.", "13,000", 0.16, 1),  # counts no troops
                _counted("Pyongyang dispatched 11,000 elite troops to Kursk.", "11,000", 0.15, 2)]
    draft = ExtractiveGenerator().generate("How many troops?", passages)
    assert draft.text == ("The deal involves hundreds of troops. [1] "
                          "Pyongyang dispatched 11,000 elite troops to Kursk. [3]")
    # Under the least probability a second figure needs, or a question of another form: one.
    low = [passages[0], passages[1], _counted("Pyongyang dispatched 11,000 elite troops to Kursk.", "11,000", 0.05, 2)]
    assert ExtractiveGenerator().generate("How many troops?", low).text == "The deal involves hundreds of troops. [1]"
    assert ExtractiveGenerator().generate("Why were troops sent?", passages).text == \
        "The deal involves hundreds of troops. [1]"
