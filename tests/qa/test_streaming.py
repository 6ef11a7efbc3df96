"""Streamed answers equal the non-streamed ones, claim by claim, citations included; an
answer that is cancelled from another thread stops its generator."""

from __future__ import annotations

import threading
import time

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
    at_once = qa.stream(TROOPS_QUESTION, top_k=5).answer()  # what the HTTP routes return unstreamed
    assert at_once is not None and (at_once.answer, at_once.status, at_once.citations) == (
        whole.answer, whole.status, whole.citations)
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


# -- cancelled from another thread (a client that left) --------------------------------------------


class SlowPieces:
    """A cited claim, then a long run-on sentence (no claim completes in it): a piece every
    10 ms, counted as it is made. (ScriptedGenerator reads its pieces only as it is read.)"""

    def __init__(self, claim_marker: int):
        self.pieces = tokens(f"{TROOPS_CLAIM} [{claim_marker}] and then" + " and then" * 1000)
        self.produced = 0

    def __iter__(self):
        for piece in self.pieces:
            time.sleep(0.01)
            self.produced += 1
            yield piece


def slow_generator(seeded, embedder) -> tuple[ScriptedGenerator, SlowPieces]:
    generator = ScriptedGenerator()
    generator.pieces = slow = SlowPieces(troops_passage_number(seeded, embedder, 5))
    return generator, slow


def _in_thread(work) -> tuple[threading.Thread, list]:
    out: list = []
    thread = threading.Thread(target=lambda: out.append(work()), daemon=True)
    thread.start()
    return thread, out


@pytest.mark.parametrize("read", ["answer", "deltas"])
def test_cancelling_from_another_thread_stops_the_generator(seeded, embedder, read):
    generator, slow = slow_generator(seeded, embedder)
    stream = answerer(seeded, embedder, generator).stream(TROOPS_QUESTION, top_k=5)
    reader, out = _in_thread(stream.answer if read == "answer" else lambda: list(stream))
    while slow.produced < 20:
        time.sleep(0.005)
    stream.cancel()
    reader.join(1)
    assert not reader.is_alive(), "the reader did not stop"
    assert generator.closed == 1, "the generator was not closed"
    produced = slow.produced
    time.sleep(0.1)
    assert slow.produced == produced < 100, "the generator kept running"
    assert stream.result is None and stream.cancelled  # nothing verified for nobody
    assert out == [None] if read == "answer" else len(out) == 1


def test_a_stream_cancelled_before_it_starts_never_runs_the_generator(seeded, embedder):
    generator, slow = slow_generator(seeded, embedder)
    stream = answerer(seeded, embedder, generator).stream(TROOPS_QUESTION, top_k=5)
    stream.cancel()
    assert stream.answer() is None and slow.produced == 0
    assert stream.next_delta() is None


def test_close_waits_for_a_step_running_in_another_thread(seeded, embedder):
    generator, slow = slow_generator(seeded, embedder)
    stream = answerer(seeded, embedder, generator).stream(TROOPS_QUESTION, top_k=5)
    first = stream.next_delta()
    assert first is not None and first.citations
    stepping, out = _in_thread(stream.next_delta)  # the next claim is 3,000 pieces away
    while slow.produced < 60:
        time.sleep(0.005)
    stream.close()  # from another thread than the one stepping: no "generator already executing"
    stepping.join(1)
    assert not stepping.is_alive() and out == [None]
    assert generator.closed == 1 and slow.produced < 100
    assert stream.next_delta() is None
