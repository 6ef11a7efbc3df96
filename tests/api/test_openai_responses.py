"""The OpenAI Responses dialect (api/openai_responses.py), without a server: requests become a
question, history and generator options; verified answers become a response whose
``url_citation`` annotations index the output text and carry citeqa's citation fields, and
whose stream events fold (as OpenAI's client folds them) into the same response. (The route
and the official client: tests/api/routes/test_responses.py.)"""

from __future__ import annotations

import json

import pytest
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from citeqa.api.conversation import titles
from citeqa.api.errors import ApiError
from citeqa.api.openai_responses import Envelope, EventWriter, ResponsesRequest, sse, url_citations
from citeqa.api.settings import Settings
from citeqa.qa.types import ChatTurn, Citation, VerifiedAnswer
from tests.support.answering import TROOPS_CLAIM, answerer, troops_passage_number
from tests.support.corpus import TROOPS_QUESTION, UNSUPPORTED_QUESTION
from tests.support.scripted import ScriptedGenerator

BASE = "http://127.0.0.1:8000/"
ANSWER = "Pyongyang sent troops [1]. Seoul protested [2]. Troops left [1]."
FIRST = Citation(marker=1, sentence_id="a/b:3", doc_id="a/b", doc_version="v1", start=10, end=31,
                 quote="Pyongyang sent troops", answer_start=0, answer_end=21, score=0.9, support=1.0)
SECOND = Citation(marker=2, sentence_id="c:0", doc_id="c", doc_version="v2", start=0, end=15,
                  quote="Seoul protested", answer_start=27, answer_end=42, score=0.5, support=0.8, origin="verifier")
THIRD = Citation(marker=1, sentence_id="a/b:3", doc_id="a/b", doc_version="v1", start=10, end=31,
                 quote="Pyongyang sent troops", answer_start=48, answer_end=59, score=0.9, support=0.6)
RESULT = VerifiedAnswer(ANSWER, "partial", [FIRST, SECOND, THIRD], 1,
                        generation={"prompt_tokens": 100, "completion_tokens": 12})
CITEQA_FIELDS = {"quote", "doc_id", "doc_version", "start", "end", "sentence_id", "support", "collection", "marker",
                 "answer_start", "answer_end", "score", "origin"}


def request(**fields) -> ResponsesRequest:
    return ResponsesRequest.model_validate({"input": "q", **fields})


# -- requests ---------------------------------------------------------------------------------------


def test_a_string_input_is_the_question():
    conversation = request(input="Who sent troops?", model="extractive@news").conversation()
    assert (conversation.question, conversation.history, conversation.model) == ("Who sent troops?", [],
                                                                                  "extractive@news")


def test_instructions_and_earlier_messages_are_history_and_non_messages_are_left_out():
    body = request(instructions="Be brief.", input=[
        {"role": "developer", "content": "Cite everything."},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Who sent troops?"}]},
        {"type": "message", "role": "assistant", "id": "msg_1", "status": "completed",
         "content": [{"type": "output_text", "text": "Pyongyang [1].", "annotations": [{"type": "url_citation"}]}]},
        {"type": "function_call_output", "call_id": "c1", "output": "42"},
        {"role": "user", "content": [{"type": "input_text", "text": "How "}, {"type": "input_image", "image_url": "x"},
                                     {"type": "input_text", "text": "many?"}]},
    ], reasoning={"effort": "low"}, include=["x"], user="someone")
    earlier = [ChatTurn("user", "Before?"), ChatTurn("assistant", "Yes [1].")]
    conversation = body.conversation(earlier)
    assert conversation.question == "How many?"
    assert conversation.history == [ChatTurn("system", "Be brief."), *earlier, ChatTurn("system", "Cite everything."),
                                    ChatTurn("user", "Who sent troops?"), ChatTurn("assistant", "Pyongyang [1].")]
    # What is kept for a follow-up: the conversation sent, without the instructions.
    assert body.turns()[-1] == ChatTurn("user", "How many?") and len(body.turns()) == 4


@pytest.mark.parametrize("input_", [
    [{"role": "user", "content": "What?"}, {"role": "assistant", "content": "Yes."}],
    [{"role": "user", "content": "What?"}, {"type": "function_call_output", "call_id": "c", "output": "1"}],
])
def test_the_last_item_must_be_a_user_message(input_):
    with pytest.raises(ApiError) as caught:
        request(input=input_).conversation()
    assert caught.value.status == 422 and "user message" in caught.value.message


def test_sampling_fields_reach_only_generators_that_take_them():
    body = request(temperature=0.2, top_p=0.9, max_output_tokens=80, generator_options={"seed": 3})
    assert body.options_for({"temperature", "max_tokens", "top_p"}) == {
        "temperature": 0.2, "top_p": 0.9, "max_tokens": 80, "seed": 3}
    assert body.options_for(set()) == {"seed": 3}


@pytest.mark.parametrize("fields, accepted", [
    ({"tools": [{"type": "function", "name": "f", "parameters": {}}]}, True),
    ({"tools": [{"type": "web_search"}], "tool_choice": "auto"}, True),
    ({"tool_choice": "none"}, True),
    ({"text": {"format": {"type": "text"}, "verbosity": "low"}}, True),
    ({"tools": [{"type": "function", "name": "f"}], "tool_choice": "required"}, False),
    ({"tool_choice": {"type": "function", "name": "f"}}, False),
    ({"text": {"format": {"type": "json_schema", "name": "x", "schema": {}}}}, False),
])
def test_what_cannot_be_honoured_is_refused(fields, accepted):
    body = request(**fields)
    if accepted:
        body.refuse_unsupported()
    else:
        with pytest.raises(ApiError) as caught:
            body.refuse_unsupported()
        assert caught.value.status == 422


def test_metadata_is_bounded_as_openai_bounds_it():
    assert request(metadata={"k": "v"}).metadata == {"k": "v"}
    for bad in ({str(i): "v" for i in range(17)}, {"k": "v" * 513}, {"k": 1}):
        with pytest.raises(ValidationError):
            request(metadata=bad)


def test_limits_count_instructions_and_the_conversation_continued():
    settings = Settings(max_chat_messages=4, max_chat_chars=100, max_question_chars=30)
    earlier = [ChatTurn("user", "a" * 20), ChatTurn("assistant", "b" * 20), ChatTurn("user", "c" * 20),
               ChatTurn("assistant", "d" * 20)]
    body = request(input="How many troops?", instructions="Be brief.")
    with pytest.raises(RequestValidationError, match="truncation"):
        body.check_limits(settings, earlier)
    # truncation auto drops the oldest turns until instructions, input and the rest fit.
    assert request(input="How many troops?", instructions="Be brief.", truncation="auto").check_limits(
        settings, earlier) == earlier[2:]
    assert body.check_limits(settings, earlier[3:]) == earlier[3:]
    for too_much in (request(input="q" * 31), request(input=[{"role": "user", "content": "x"}] * 5),
                     request(input="q", instructions="i" * 100), request(input=[])):
        with pytest.raises(RequestValidationError):
            too_much.check_limits(settings, [])


# -- the response object ----------------------------------------------------------------------------


def test_annotations_cover_their_markers_and_carry_citeqa_s_fields():
    notes = url_citations(ANSWER, RESULT.citations, BASE, {"a/b": "Troops", "c": ""}, "news")
    assert [ANSWER[n["start_index"]:n["end_index"]] for n in notes] == ["[1]", "[2]", "[1]"]
    assert notes[0]["start_index"] != notes[2]["start_index"]  # each claim's own marker
    assert notes[0]["url"] == "http://127.0.0.1:8000/v1/documents/a%2Fb?version=v1&start=10&end=31&collection=news"
    assert [n["title"] for n in notes] == ["Troops", "c", "Troops"]  # no title: the doc_id
    for n, c in zip(notes, RESULT.citations, strict=True):
        assert n["type"] == "url_citation" and CITEQA_FIELDS <= set(n)
        assert (n["quote"], n["start"], n["end"], n["doc_version"], n["collection"]) == (
            c.quote, c.start, c.end, c.doc_version, "news")
    assert "index" not in notes[0]  # LangChain reserves "index" in content blocks


def test_a_citation_whose_marker_is_missing_annotates_its_claim():
    [note] = url_citations("Pyongyang sent troops.", [FIRST], BASE, {})
    assert "Pyongyang sent troops."[note["start_index"]:note["end_index"]] == "Pyongyang sent troops"


def test_a_response_has_openai_s_shape_and_citeqa_s_extras():
    envelope = Envelope.of(request(instructions="Be brief.", temperature=0.1, metadata={"k": "v"}), "citeqa")
    body = envelope.completed(RESULT, BASE, {})
    assert body["id"].startswith("resp_") and body["object"] == "response" and body["status"] == "completed"
    assert (body["instructions"], body["temperature"], body["metadata"], body["error"]) == ("Be brief.", 0.1,
                                                                                          {"k": "v"}, None)
    [message] = body["output"]
    assert message["type"] == "message" and message["role"] == "assistant" and message["id"].startswith("msg_")
    [part] = message["content"]
    assert part["type"] == "output_text" and part["text"] == ANSWER and len(part["annotations"]) == 3
    assert body["usage"] == {"input_tokens": 100, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 12,
                             "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 112}
    assert body["answer_status"] == "partial" and body["dropped_citations"] == 1 and body["offset_unit"] == "codepoint"
    assert [c["quote"] for c in body["citations"]] == [n["quote"] for n in part["annotations"]]


# -- on verified answers: the contract, and streamed == whole --------------------------------------------


def tokens(text: str, size: int = 3) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)]


def stream_events(qa, question: str, corpus, envelope: Envelope) -> tuple[list[dict], VerifiedAnswer]:
    """The dialect's events for a streamed answer, fed as api/conversation.answer_events feeds
    them, through their SSE framing and back."""
    writer = EventWriter(envelope, BASE, "default")
    stream = qa.stream(question, top_k=5)
    events = writer.opening()
    sent, known = "", {}
    for delta in stream:
        sent += delta.text
        known.update(titles(corpus, delta.citations))
        events += writer.text(delta.text, sent, delta.citations, dict(known))
    result = stream.result
    assert result is not None
    known.update(titles(corpus, result.citations))
    closing, _ = writer.finished(result, known)
    events += closing
    framed = "".join(sse(e) for e in events)
    parsed = []
    for frame in framed.split("\n\n")[:-1]:
        head, data = frame.split("\n")
        event = json.loads(data.removeprefix("data: "))
        assert head == f"event: {event['type']}"
        parsed.append(event)
    return parsed, result


def fold(events: list[dict]) -> tuple[str, list[dict]]:
    """The text and annotations the deltas build, as a client folds them."""
    text, notes = "", []
    for e in events:
        if e["type"] == "response.output_text.delta":
            text += e["delta"]
        elif e["type"] == "response.output_text.annotation.added":
            assert e["annotation_index"] == len(notes)
            notes.append(e["annotation"])
    return text, notes


@pytest.mark.parametrize("template, question", [
    ("{claim} [{n}]. Troops were dispatched to assist in the conflict [{n}].", TROOPS_QUESTION),
    ("The weather is unknown. {claim} [{n}]. Bananas grow on trees.", TROOPS_QUESTION),
    ("{claim} [{n}][9]. Elite troops were sent [{n}], and nobody knows why.", TROOPS_QUESTION),
    ("{claim}. And troops were dispatched.", TROOPS_QUESTION),
    ("The passages do not answer this question.", UNSUPPORTED_QUESTION),
    (None, TROOPS_QUESTION),  # the extractive generator
])
def test_verified_answers_keep_the_contract_and_stream_as_the_whole_response(seeded, embedder, template, question):
    n = troops_passage_number(seeded, embedder, 5)
    generator = ScriptedGenerator(pieces=tokens(template.format(claim=TROOPS_CLAIM, n=n))) if template else None
    qa = answerer(seeded, embedder, generator, attribute_uncited=True)
    whole = qa.ask(question, top_k=5)
    envelope = Envelope.of(request(input=question), "citeqa")
    body = envelope.completed(whole, BASE, titles(seeded, whole.citations))

    [part] = body["output"][0]["content"]
    text, notes = part["text"], part["annotations"]
    assert text == whole.answer and len(notes) == len(whole.citations)
    for note in notes:
        assert text[note["start_index"]:note["end_index"]] == f"[{note['marker']}]"
        assert note["answer_end"] <= note["start_index"]  # after the claim it supports
        doc = seeded.document(note["doc_id"], note["doc_version"])
        assert doc.text[note["start"]:note["end"]] == note["quote"]
        assert note["title"] == doc.title
    if question == UNSUPPORTED_QUESTION:
        assert body["answer_status"] == "unsupported" and notes == []

    events, result = stream_events(qa, question, seeded, envelope)
    assert result.answer == whole.answer
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    kinds = [e["type"] for e in events]
    assert kinds[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added"]
    assert kinds[-4:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done",
                          "response.completed"]
    streamed_text, streamed_notes = fold(events)
    final = events[-1]["response"]
    assert streamed_text == text == events[-4]["text"]
    assert streamed_notes == notes == final["output"][0]["content"][0]["annotations"]
    assert {k: v for k, v in final.items() if k not in ("id", "created_at", "completed_at", "output")} == {
        k: v for k, v in body.items() if k not in ("id", "created_at", "completed_at", "output")}
    assert events[0]["response"]["id"] == final["id"] == envelope.id


def test_annotations_announced_early_are_not_announced_again_at_the_end():
    writer = EventWriter(Envelope.of(request(), "citeqa"), BASE, "default")
    writer.opening()
    first = writer.text("Pyongyang sent troops [1].", "Pyongyang sent troops [1].", [FIRST], {})
    closing, whole = writer.finished(RESULT, {})
    added = [e for e in first + closing if e["type"] == "response.output_text.annotation.added"]
    assert [e["annotation_index"] for e in added] == [0, 1, 2]
    assert [e["annotation"] for e in added] == whole["output"][0]["content"][0]["annotations"]
    deltas = "".join(e["delta"] for e in first + closing if e["type"] == "response.output_text.delta")
    assert deltas == ANSWER


def test_a_failure_mid_stream_is_an_error_event_then_response_failed():
    writer = EventWriter(Envelope.of(request(), "citeqa"), BASE, "default")
    opening = writer.opening()
    error, failed = writer.failed(504, "upstream_timeout", "too slow")
    assert error == {"type": "error", "sequence_number": len(opening), "code": "upstream_timeout",
                     "message": "too slow", "param": None, "status": 504}
    assert failed["type"] == "response.failed" and failed["sequence_number"] == len(opening) + 1
    assert failed["response"]["status"] == "failed"
    assert failed["response"]["error"] == {"code": "upstream_timeout", "message": "too slow"}
