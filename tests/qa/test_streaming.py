"""Streamed answers equal the non-streamed ones, claim by claim, citations included."""

from __future__ import annotations

import pytest

from citeqa.qa.answer import NO_ANSWER
from citeqa.qa.streaming import complete_until
from tests.support.answering import TROOPS_CLAIM, answerer, troops_passage_number
from tests.support.corpus import TROOPS_QUESTION, UNSUPPORTED_QUESTION
from tests.support.scripted import ScriptedGenerator


@pytest.mark.parametrize("text, upto", [
    ("", 0),
    ("Paris is big", 0),
    ("Paris is big [1]", 0),          # another marker may follow
    ("Paris is big [1][2]", 0),
    ("Paris is big [1]. It", 17),     # the group is closed by what follows
    ("Paris is big. It has", 13),     # a sentence end that the next sentence follows
    ("Paris is big. [1]", 0),         # a marker may come after the period
    ("Paris is big. ", 0),
    ("A [1]. B. C [2] and", 15),
])
def test_complete_until(text, upto):
    assert complete_until(text) == upto


def tokens(text: str, size: int = 3) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)]


def streamed(qa, question=TROOPS_QUESTION, **kw):
    stream = qa.stream(question, top_k=5, **kw)
    deltas = list(stream)
    return deltas, stream.result


@pytest.mark.parametrize("template", [
    "{claim} [{n}]. Troops were dispatched to assist in the conflict [{n}].",
    "The weather is unknown. {claim} [{n}]. Bananas grow on trees.",
    "{claim}. [{n}] Approximately 11,000 to 12,000 elite troops [{n}].",   # marker after the period
    "{claim} [{n}][9]. {claim} [{n}]. {claim} [{n}].",                    # invented marker, then a loop
    "{claim}. And troops were dispatched.",                               # no markers at all
    "The passages do not answer this question.",
])
def test_stream_equals_ask(seeded, embedder, template):
    n = troops_passage_number(seeded, embedder, 5)
    text = template.format(claim=TROOPS_CLAIM, n=n)
    qa = answerer(seeded, embedder, ScriptedGenerator(pieces=tokens(text)), attribute_uncited=True)
    whole = qa.ask(TROOPS_QUESTION, top_k=5)
    deltas, result = streamed(qa)
    assert (result.answer, result.status, result.citations, result.dropped_citations) == (
        whole.answer, whole.status, whole.citations, whole.dropped_citations)
    joined = "".join(d.text for d in deltas)
    if whole.status == "unsupported":
        assert joined == NO_ANSWER or joined == ""
    else:
        assert joined == whole.answer
    streamed_citations = [c for d in deltas for c in d.citations]
    assert sorted(streamed_citations, key=lambda c: (c.marker, c.answer_start)) == sorted(
        whole.citations, key=lambda c: (c.marker, c.answer_start))
    # Each citation arrives with (or after) the text its marker is in.
    sent = ""
    for d in deltas:
        sent += d.text
        for c in d.citations:
            assert f"[{c.marker}]" in sent


def test_claims_arrive_before_the_draft_ends(seeded, embedder):
    n = troops_passage_number(seeded, embedder, 5)
    text = f"{TROOPS_CLAIM} [{n}]. Troops were dispatched to assist in the conflict [{n}]. The end is near."
    qa = answerer(seeded, embedder, ScriptedGenerator(pieces=tokens(text)), attribute_uncited=True)
    deltas, result = streamed(qa)
    assert len(deltas) >= 2 and deltas[0].text.startswith(TROOPS_CLAIM) and deltas[0].citations
    assert "".join(d.text for d in deltas) == result.answer


def test_abstaining_streams_nothing_and_gives_the_no_answer_result(seeded, embedder):
    generator = ScriptedGenerator("Tungsten boils at 5,555 degrees Celsius [1].")
    deltas, result = streamed(answerer(seeded, embedder, generator), UNSUPPORTED_QUESTION)
    assert deltas == [] and result.answer == NO_ANSWER and generator.calls == []


def test_closing_the_stream_mid_answer_closes_the_generator(seeded, embedder):
    n = troops_passage_number(seeded, embedder, 5)
    generator = ScriptedGenerator(pieces=tokens(f"{TROOPS_CLAIM} [{n}]. Then more text follows here. " * 20))
    stream = answerer(seeded, embedder, generator).stream(TROOPS_QUESTION, top_k=5)
    deltas = iter(stream)
    first = next(deltas)
    assert first.text and generator.closed == 0
    stream.close()
    assert generator.closed == 1
