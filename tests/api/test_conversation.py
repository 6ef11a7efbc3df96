"""What every chat dialect shares (api/conversation.py): the model name's collection, and an
answer read as events, which must add up to the whole answer, carry failures as events, and
cancel the answer when its reader leaves."""

from __future__ import annotations

import anyio
import pytest
from fastapi.exceptions import RequestValidationError

from citeqa.api.conversation import AnswerInProgress, Failed, Finished, TextDelta, answer_events, split_model
from citeqa.api.observability import Metrics
from citeqa.api.services import Services
from citeqa.api.settings import Settings
from citeqa.index.scope import Scope
from citeqa.qa.types import GeneratorError
from tests.support.corpus import SEEDS_DIR, TROOPS_QUESTION
from tests.support.scripted import ScriptedGenerator


@pytest.mark.parametrize("model, field, expected", [
    ("citeqa", None, ("citeqa", None)),
    ("citeqa@news", None, ("citeqa", "news")),
    ("extractive@news", "news", ("extractive", "news")),
    ("llamacpp", "news", ("llamacpp", "news")),
])
def test_the_model_name_and_the_collection_field_name_one_collection(model, field, expected):
    assert split_model(model, field) == expected


def test_a_model_name_and_a_field_that_disagree_are_refused():
    with pytest.raises(RequestValidationError) as raised:  # answered 422, like any invalid field
        split_model("citeqa@news", "sport")
    (error,) = raised.value.errors()
    assert error["loc"] == ("body", "collection") and "'news'" in error["msg"] and "'sport'" in error["msg"]


class _FailsAfterOnePiece:
    def __iter__(self):
        yield "North Korea sent troops [1]. "
        raise GeneratorError("timeout", "the upstream took too long")


@pytest.fixture(scope="module")
def services(tmp_path_factory, embedder):
    scripted = ScriptedGenerator(pieces=["Between 11,000 and 12,000 troops [1]. ", "They fought in Kursk [2]."])
    failing = ScriptedGenerator()
    failing.pieces = _FailsAfterOnePiece()
    settings = Settings(data_dir=tmp_path_factory.mktemp("conversation"), seeds_dir=SEEDS_DIR)
    opened = Services.open(settings, embedder, {"scripted": scripted, "failing": failing})
    opened.seed()
    yield opened
    opened.close()


def _answer(services: Services, generator: str) -> AnswerInProgress:
    answerer = services.answerer_for(Scope())
    stream = answerer.stream(TROOPS_QUESTION, 5, generator=generator)
    return AnswerInProgress(stream, answerer.store, "default", generator, "http://citeqa.test")


async def _collect(answer: AnswerInProgress, metrics: Metrics) -> list:
    return [event async for event in answer_events(answer, metrics)]


def test_the_events_add_up_to_the_whole_answer(services):
    metrics = Metrics(lambda: 0)
    events = anyio.run(_collect, _answer(services, "scripted"), metrics)
    *deltas, end = events
    assert deltas and all(isinstance(d, TextDelta) for d in deltas)
    assert isinstance(end, Finished)
    streamed = "".join(d.text for d in deltas) + end.unsent
    assert streamed == end.result.answer == deltas[-1].sent + end.unsent
    cited = [c for d in deltas for c in d.citations]
    assert cited and {(c.doc_id, c.start, c.end) for c in cited} == {(c.doc_id, c.start, c.end)
                                                                      for c in end.result.citations}
    assert set(end.titles) == {c.doc_id for c in end.result.citations} and all(end.titles.values())


def test_a_generator_failing_mid_answer_ends_the_events_with_its_status(services):
    events = anyio.run(_collect, _answer(services, "failing"), Metrics(lambda: 0))
    assert isinstance(events[-1], Failed)
    assert (events[-1].status, events[-1].message) == (504, "the upstream took too long")


def test_a_reader_that_leaves_cancels_the_answer(services):
    answer = _answer(services, "scripted")

    async def read_one() -> None:
        events = answer_events(answer, Metrics(lambda: 0))
        assert isinstance(await events.__anext__(), TextDelta)
        await events.aclose()

    anyio.run(read_one)
    assert answer.stream.cancelled and answer.stream.result is None
