"""The extractive generator: the best-ranked sentence verbatim, no model."""

from __future__ import annotations

import pytest

from citeqa.index.types import Hit, Sentence
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
