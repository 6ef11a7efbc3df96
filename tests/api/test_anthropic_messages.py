"""The Anthropic Messages dialect (api/anthropic_messages.py), without a server: requests
become a question, history, scope and generator options; verified answers become text
blocks whose ``char_location`` citations index the stored document text, streamed as the
same blocks. (The route and the official client: tests/api/routes/test_messages.py.)"""

from __future__ import annotations

import json
import re

import pytest

from citeqa.api.anthropic_messages import (
    Block,
    MessageEvents,
    MessagesRequest,
    Place,
    error_body,
    message,
    text_blocks,
)
from citeqa.api.conversation import Failed, Finished, TextDelta, titles
from citeqa.api.errors import ApiError
from citeqa.qa.types import ChatTurn, Citation, VerifiedAnswer
from tests.support.answering import TROOPS_CLAIM, answerer, troops_passage_number
from tests.support.corpus import TROOPS_QUESTION, UNSUPPORTED_QUESTION
from tests.support.scripted import ScriptedGenerator

ANSWER = "Pyongyang sent troops [1]. Seoul protested [2][3]. Nobody knows why."
FIRST = Citation(marker=1, sentence_id="a:3", doc_id="a", doc_version="v1", start=10, end=31,
                 quote="Pyongyang sent troops", answer_start=0, answer_end=21, score=0.9, support=1.0)
SECOND = Citation(marker=2, sentence_id="b:0", doc_id="b", doc_version="v2", start=0, end=15,
                  quote="Seoul protested", answer_start=27, answer_end=42, score=0.5, support=0.8)
THIRD = Citation(marker=3, sentence_id="a:4", doc_id="a", doc_version="v1", start=40, end=55,
                 quote="Seoul protested", answer_start=27, answer_end=42, score=0.4, support=0.7)
RESULT = VerifiedAnswer(ANSWER, "partial", [FIRST, SECOND, THIRD], 0,
                        generation={"prompt_tokens": 100, "completion_tokens": 12})
PLACE = Place("http://127.0.0.1:8000/")


def request(**fields) -> MessagesRequest:
    return MessagesRequest.model_validate({"max_tokens": 64, **fields})


def user(content) -> dict:
    return {"role": "user", "content": content}


def accumulate(lines: list[str]) -> tuple[list[dict], list[dict]]:
    """Anthropic's SSE framing checked, and the events folded the way its client folds them:
    the events, and the content blocks they build."""
    events = []
    for frame in "".join(lines).split("\n\n")[:-1]:
        head, data = frame.split("\n")
        event = json.loads(data.removeprefix("data: "))
        assert head == f"event: {event['type']}"
        events.append(event)
    blocks: list[dict] = []
    for e in events:
        if e["type"] == "content_block_start":
            assert e["index"] == len(blocks)
            blocks.append(dict(e["content_block"]))
        elif e["type"] == "content_block_delta":
            block, delta = blocks[e["index"]], e["delta"]
            if delta["type"] == "text_delta":
                block["text"] += delta["text"]
            else:
                block["citations"] = block.get("citations", []) + [delta["citation"]]
    return events, blocks


# -- requests ---------------------------------------------------------------------------------------


def test_the_last_user_message_is_the_question_and_system_and_earlier_turns_history():
    body = request(system=[{"type": "text", "text": "Be brief."}], messages=[
        user("Who sent troops?"),
        {"role": "assistant", "content": [{"type": "text", "text": "Pyongyang", "citations": [{"x": 1}]},
                                          {"type": "text", "text": " did."}]},
        user([{"type": "text", "text": "How "}, {"type": "image", "source": {}}, {"type": "text", "text": "many?"}]),
    ], anthropic_beta="ignored")
    conversation = body.conversation()
    assert conversation.question == "How many?"
    assert conversation.history == [ChatTurn("system", "Be brief."), ChatTurn("user", "Who sent troops?"),
                                    ChatTurn("assistant", "Pyongyang did.")]
    assert conversation.model == "citeqa" and conversation.doc_ids is None and conversation.top_k is None


def test_sampling_fields_reach_generators_that_take_them_and_passages_is_the_retrieval_count():
    body = request(messages=[user("q")], max_tokens=80, temperature=0.2, top_k=5, passages=7,
                   generator_options={"seed": 3})
    assert body.options_for({"temperature", "max_tokens", "top_p", "seed"}) == {
        "temperature": 0.2, "max_tokens": 80, "seed": 3}
    assert body.options_for({"top_k"}) == {"top_k": 5, "seed": 3}
    assert body.conversation().top_k == 7


def test_document_blocks_name_stored_documents_and_documents_sent_whole_are_refused():
    named = request(messages=[user([{"type": "document", "source": {"type": "file", "file_id": "b"}},
                                    {"type": "document", "source": {"type": "file", "file_id": "a"}},
                                    {"type": "text", "text": "Who?"}])])
    assert named.documents() == ["b", "a"] and named.conversation().doc_ids == ["b", "a"]
    for source in ({"type": "text", "media_type": "text/plain", "data": "Seoul protested."},
                   {"type": "url", "url": "https://example.org/a.pdf"}, {"type": "file"}):
        with pytest.raises(ApiError) as refused:
            request(messages=[user([{"type": "document", "source": source}, {"type": "text", "text": "Who?"}])
                              ]).conversation()
        assert refused.value.status == 422 and "POST /v1/documents" in refused.value.message
    with pytest.raises(Exception, match="not both"):
        request(messages=named.model_dump()["messages"], filter={"doc_ids": ["a"]}).conversation()


def test_the_last_message_must_be_the_user_s():
    with pytest.raises(ApiError, match="last message must be a user message"):
        request(messages=[user("Who?"), {"role": "assistant", "content": "Me."}]).conversation()


# -- the answer as blocks ---------------------------------------------------------------------------------


def test_each_cited_claim_is_a_block_and_the_markers_are_gone():
    blocks = text_blocks(ANSWER, RESULT.citations)
    assert blocks == [Block("Pyongyang sent troops", (FIRST,)), Block(". "), Block("Seoul protested", (SECOND, THIRD)),
                      Block(". Nobody knows why.")]
    assert "".join(b.text for b in blocks) == "Pyongyang sent troops. Seoul protested. Nobody knows why."


def test_a_message_carries_char_locations_with_citeqa_s_fields_beside():
    body = message("citeqa", RESULT, {"a": "Troops"}, PLACE)
    assert body["id"].startswith("msg_") and body["type"] == "message" and body["role"] == "assistant"
    assert body["stop_reason"] == "end_turn" and body["stop_sequence"] is None
    assert body["usage"] == {"input_tokens": 100, "output_tokens": 12} and body["status"] == "partial"
    cited = [b for b in body["content"] if b["citations"]]
    first, second, third = [c for b in cited for c in b["citations"]]
    assert first["type"] == "char_location" and first["cited_text"] == "Pyongyang sent troops"
    assert (first["start_char_index"], first["end_char_index"]) == (10, 31)
    assert (first["doc_id"], first["doc_version"], first["sentence_id"], first["marker"]) == ("a", "v1", "a:3", 1)
    assert first["url"] == "http://127.0.0.1:8000/v1/documents/a?version=v1&start=10&end=31"
    # document_index: the order in which the answer first cites documents
    assert [c["document_index"] for c in (first, second, third)] == [0, 1, 0]
    assert [c["document_title"] for c in (first, second, third)] == ["Troops", None, "Troops"]
    named = message("citeqa", RESULT, {}, Place("http://x", documents=("z", "b", "a")))
    assert [c["document_index"] for b in named["content"] for c in b["citations"] or []] == [2, 1, 2]


def test_errors_take_anthropic_s_shape_with_citeqa_s_code():
    assert error_body(404, "model_not_found", "no such model") == {
        "type": "error", "error": {"type": "not_found_error", "message": "no such model", "code": "model_not_found"}}
    assert error_body(422, "invalid_request", "x")["error"]["type"] == "invalid_request_error"
    assert error_body(504, "upstream_timeout", "x")["error"]["type"] == "api_error"


# -- on verified answers: the contract, and streamed == whole --------------------------------------------


def tokens(text: str, size: int = 3) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)]


def stream_lines(qa, question: str, corpus, place: Place) -> tuple[list[str], VerifiedAnswer]:
    """The dialect's events for a streamed answer, made from the stream as
    api/conversation.answer_events makes them."""
    stream = qa.stream(question, top_k=5)
    events = MessageEvents("citeqa", place)
    lines = events.opening()
    sent, known = "", {}
    for delta in stream:
        sent += delta.text
        known.update(titles(corpus, delta.citations))
        lines += events.format(TextDelta(delta.text, delta.citations, sent, dict(known)))
    result = stream.result
    assert result is not None
    known.update(titles(corpus, result.citations))
    return lines + events.format(Finished(result, result.answer if not sent else "", known)), result


SLOW = pytest.mark.slow  # a scripted draft is verified at each claim as it streams: ~10 s each here


@pytest.mark.parametrize("template, question", [
    pytest.param("{claim} [{n}]. Troops were dispatched to assist in the conflict [{n}].", TROOPS_QUESTION, marks=SLOW),
    pytest.param("The weather is unknown. {claim} [{n}]. Bananas grow on trees.", TROOPS_QUESTION, marks=SLOW),
    pytest.param("{claim} [{n}][9]. Elite troops were sent [{n}], and nobody knows why.", TROOPS_QUESTION, marks=SLOW),
    pytest.param("{claim}. And troops were dispatched.", TROOPS_QUESTION, marks=SLOW),
    ("The passages do not answer this question.", UNSUPPORTED_QUESTION),
    (None, TROOPS_QUESTION),  # the extractive generator
])
def test_verified_answers_keep_the_contract_and_stream_as_the_whole_message(seeded, embedder, template, question):
    n = troops_passage_number(seeded, embedder, 5)
    generator = ScriptedGenerator(pieces=tokens(template.format(claim=TROOPS_CLAIM, n=n))) if template else None
    qa = answerer(seeded, embedder, generator, attribute_uncited=True)
    whole = qa.ask(question, top_k=5)
    body = message("citeqa", whole, titles(seeded, whole.citations), PLACE)

    content = body["content"]
    assert "".join(b["text"] for b in content) == re.sub(r"[ \t]*(?:\[\d+\])+", "", whole.answer)
    locations = [c for b in content for c in b["citations"] or []]
    assert len(locations) == len(whole.citations)
    for block in content:
        for c in block["citations"] or []:
            doc = seeded.document(c["doc_id"], c["doc_version"])
            assert doc.text[c["start_char_index"]:c["end_char_index"]] == c["cited_text"]
            assert c["document_title"] == doc.title
            # the block is the claim this citation attaches to
            assert any(x.marker == c["marker"] and block["text"] == whole.answer[x.answer_start:x.answer_end]
                       for x in whole.citations)
    first_cited = list(dict.fromkeys(c["doc_id"] for c in locations))
    assert [c["document_index"] for c in locations] == [first_cited.index(c["doc_id"]) for c in locations]

    lines, result = stream_lines(qa, question, seeded, PLACE)
    events, blocks = accumulate(lines)
    assert [e["type"] for e in events[:2]] == ["message_start", "ping"]
    assert [e["type"] for e in events[-2:]] == ["message_delta", "message_stop"]
    assert result.answer == whole.answer
    assert blocks == [{k: v for k, v in b.items() if v is not None} for b in content]
    assert events[-2]["status"] == body["status"] and events[-2]["delta"]["stop_reason"] == "end_turn"


def test_a_failure_mid_stream_is_an_error_event():
    [line] = MessageEvents("citeqa", PLACE).format(Failed(504, "upstream_timeout", "too slow"))
    events, _ = accumulate([line])
    assert events == [{"type": "error", "error": {"type": "api_error", "message": "too slow",
                                                   "code": "upstream_timeout"}}]
