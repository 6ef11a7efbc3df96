"""Follow-up questions in a chat are searched with the subject of the turn before."""

from __future__ import annotations

import pytest

from citeqa.index.embedded_store import EmbeddedStore
from citeqa.index.ingest import DocumentInput, Ingestor, read_inputs
from citeqa.index.retriever import HybridRetriever
from citeqa.qa.followup import MAX_CONTEXT_CHARS, chat_context, is_follow_up
from citeqa.qa.generators.extractive import is_heading
from citeqa.qa.types import ChatTurn
from tests.support.corpus import SEEDS_DIR

# Distractors that answer each follow-up on its own, about another subject.
OTHERS = {
    "crimea": ("Crimean War hospitals", "Florence Nightingale nursed British soldiers at Scutari. "
               "Thousands of soldiers were wounded at the Battle of Inkerman. "
               "Most deaths in the hospitals came from disease, not wounds."),
    "eiffel": ("Eiffel Tower", "The Eiffel Tower is 330 metres tall. It was completed in 1889 for the World's Fair."),
    "forth": ("Forth Bridge", "The Forth Bridge is a railway bridge in Scotland. It was completed in 1890 "
              "and is 2,467 metres long."),
    "schools": ("Language schools", "Teachers from France will teach French in schools in Dakar and Abidjan."),
    "builders": ("Migrant builders", "Workers from Nepal who arrive in Qatar are sent to stadium construction sites."),
}

# (first question, follow-up, text the follow-up's best sentence must contain)
CASES = [
    ("How many troops did North Korea send?", "And how many were wounded?", "hundreds of wounded soldiers"),
    ("Who is Russia's ambassador to Pyongyang?", "Where did he say North Korean educators would teach?", "Kazan"),
    ("How tall is the Eiffel Tower?", "When was it completed?", "1889"),
    ("How many North Koreans entered Russia for work in 2024?", "Where are they being sent?", "construction sites"),
    ("Did North Korea ask Russia for payment for the treatment?", "What about the students?", "internships"),
    ("How long is the Forth Bridge?", "When was it completed?", "1890"),
]


@pytest.fixture(scope="module")
def retriever(tmp_path_factory, embedder):
    store = EmbeddedStore(tmp_path_factory.mktemp("followup"), embedder.dimension)
    ingestor = Ingestor(store, embedder)
    ingestor.ingest_many(read_inputs([SEEDS_DIR]))
    for doc_id, (title, text) in OTHERS.items():
        ingestor.ingest(DocumentInput(text=text, doc_id=doc_id, title=title))
    yield HybridRetriever(store, embedder)
    store.close()


@pytest.mark.parametrize("question, expected", [
    ("And how many were wounded?", True), ("What about the students?", True), ("When was it completed?", True),
    ("Where are they being sent?", True), ("How many troops did North Korea send?", False),
    ("Who is Russia's ambassador to Pyongyang?", False), ("Why?", True),
])
def test_is_follow_up(question, expected):
    assert is_follow_up(question) is expected


def test_a_standalone_question_is_searched_as_it_is():
    history = [ChatTurn("user", "How tall is the Eiffel Tower?"), ChatTurn("assistant", "330 metres [1].")]
    assert chat_context("How many troops did North Korea send?", history) is None
    assert chat_context("When was it completed?", []) is None
    assert chat_context("When was it completed?", history) == "How tall is the Eiffel Tower?"


def test_the_context_is_at_most_a_question_long_however_long_the_turn():
    # A megabyte of earlier turn became a megabyte of document query (7 s a follow-up).
    huge = "How tall is the Eiffel Tower? " + "tower " * 200_000
    context = chat_context("When was it completed?", [ChatTurn("user", huge)])
    assert context is not None and len(context) <= MAX_CONTEXT_CHARS
    assert context.startswith("How tall is the Eiffel Tower?")


def test_only_the_latest_user_question_is_read():
    history = [ChatTurn("user", "How long is the Forth Bridge?"), ChatTurn("assistant", "2,467 metres [1]."),
               ChatTurn("user", "How tall is the Eiffel Tower?"), ChatTurn("assistant", "330 metres [1]."),
               ChatTurn("user", "   ")]
    assert chat_context("When was it completed?", history) == "How tall is the Eiffel Tower?"


def top_hit_contains(retriever, query: str, expected: str, context: str | None = None) -> bool:
    """Whether the sentence the extractive answer would give (the best hit that is not a
    headline) holds the expected text."""
    hits = [h for h in retriever.search(query, 5, context=context) if not is_heading(h.sentence.text)]
    return bool(hits) and expected in hits[0].sentence.text


def test_follow_ups_find_the_same_subject(retriever):
    with_context = sum(top_hit_contains(retriever, f, e, chat_context(f, [ChatTurn("user", q)])) for q, f, e in CASES)
    alone = sum(top_hit_contains(retriever, f, e) for q, f, e in CASES)
    joined = sum(top_hit_contains(retriever, f"{q} {f}", e) for q, f, e in CASES)
    print(f"follow-ups answered from the right sentence: {with_context}/{len(CASES)} with context, "
          f"{alone}/{len(CASES)} searched alone, {joined}/{len(CASES)} searched joined to the previous question")
    # Measured: 5/6 with context, 4/6 alone, 3/6 joined (docs/GENERATORS.md). The miss:
    # "And how many were wounded?" still prefers a "how many North Koreans" sentence of the
    # right article over the one about hundreds of wounded soldiers.
    assert with_context >= len(CASES) - 1
    assert with_context > alone and with_context > joined
