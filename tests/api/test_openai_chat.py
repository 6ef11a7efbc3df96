"""The OpenAI chat-completions dialect (api/openai_chat.py), without a server: requests
become a question, history and generator options; a verified answer becomes a completion
whose ``url_citation`` annotations cover its markers. (The route: tests/api/routes/test_chat.py.)"""

from __future__ import annotations

from citeqa.api.openai_chat import ChatRequest, chunk, citation_url, completion, url_annotations, usage
from citeqa.qa.types import ChatTurn, Citation, ShortAnswer, VerifiedAnswer

ANSWER = "Pyongyang sent troops [1]. Seoul protested [2]."
FIRST = Citation(marker=1, sentence_id="a/b:3", doc_id="a/b", doc_version="v1", start=10, end=30,
                 quote="Pyongyang sent troops", answer_start=0, answer_end=21, score=0.9, support=1.0)
SECOND = Citation(marker=2, sentence_id="c:0", doc_id="c", doc_version="v2", start=0, end=15,
                  quote="Seoul protested", answer_start=27, answer_end=42, score=0.5, support=0.8)
RESULT = VerifiedAnswer(ANSWER, "answered", [FIRST, SECOND], 1,
                        short_answer=ShortAnswer("troops", "a/b", "v1", 24, 30),
                        generation={"generator": "llamacpp", "prompt_tokens": 100, "completion_tokens": 12})


def test_the_last_message_is_the_question_and_the_rest_history():
    request = ChatRequest.model_validate({"messages": [
        {"role": "developer", "content": "Be brief."},
        {"role": "user", "content": "Who sent troops?"},
        {"role": "assistant", "content": "Pyongyang [1]."},
        {"role": "tool", "content": "ignored"},
        {"role": "user", "content": [{"type": "text", "text": "How "}, {"type": "image_url"},
                                     {"type": "text", "text": "many?"}]},
    ], "name": "a field of the client's own"})
    question, history = request.question_and_history()
    assert question == "How many?"
    assert history == [ChatTurn("system", "Be brief."), ChatTurn("user", "Who sent troops?"),
                       ChatTurn("assistant", "Pyongyang [1].")]
    assert request.model == "citeqa"


def test_sampling_fields_reach_only_generators_that_take_them():
    request = ChatRequest.model_validate({"messages": [{"role": "user", "content": "q"}], "temperature": 0.2,
                                          "max_tokens": 50, "max_completion_tokens": 80, "seed": 7,
                                          "generator_options": {"top_p": 0.5}})
    assert request.options_for({"temperature", "max_tokens", "top_p", "seed"}) == {
        "temperature": 0.2, "max_tokens": 80, "seed": 7, "top_p": 0.5}
    assert request.options_for(set()) == {"top_p": 0.5}  # explicit options are passed on, to be checked


def test_annotations_cover_the_markers_and_resolve_to_the_span():
    base = "http://127.0.0.1:8000/"
    notes = url_annotations(ANSWER, [FIRST, SECOND], base, {"a/b": "Troops", "c": ""})
    assert [ANSWER[n["url_citation"]["start_index"]:n["url_citation"]["end_index"]] for n in notes] == ["[1]", "[2]"]
    assert notes[0]["url_citation"]["url"] == "http://127.0.0.1:8000/v1/documents/a%2Fb?version=v1&start=10&end=30"
    assert [n["url_citation"]["title"] for n in notes] == ["Troops", "c"]  # no title: the doc_id
    assert citation_url(base, SECOND) == "http://127.0.0.1:8000/v1/documents/c?version=v2&start=0&end=15"


def test_a_completion_carries_citations_beside_openai_s_fields():
    body = completion("citeqa", RESULT, "http://x/", {})
    message = body["choices"][0]["message"]
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    assert message["content"] == ANSWER and message["role"] == "assistant"
    assert [c["marker"] for c in message["citations"]] == [1, 2] and body["citations"] == message["citations"]
    assert message["status"] == body["status"] == "answered" and message["dropped_citations"] == 1
    assert message["short_answer"] == {"text": "troops", "doc_id": "a/b", "doc_version": "v1", "start": 24, "end": 30}
    assert body["usage"] == usage(RESULT) == {"prompt_tokens": 100, "completion_tokens": 12, "total_tokens": 112}


def test_a_chunk_is_one_delta():
    event = chunk("chatcmpl-1", "citeqa", 5, {"content": "Hi"}, None, status="answered")
    assert event == {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 5, "model": "citeqa",
                     "choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": None, "logprobs": None}],
                     "status": "answered"}
