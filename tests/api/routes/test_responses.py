"""OpenAI Responses API (api/routes/responses.py): in process for the shapes, follow-ups and
errors, then the official openai client against a real `citeqa serve`. (The dialect without
a server: tests/api/test_openai_responses.py.)"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import httpx
import pytest

from citeqa.api.app import create_app
from citeqa.api.settings import Settings
from citeqa.qa.types import GeneratorError
from tests.support.corpus import SEEDS_DIR, TROOPS_QUESTION, UNSUPPORTED_QUESTION
from tests.support.llm import requires_llm
from tests.support.scripted import ScriptedGenerator
from tests.support.servers import Server

TROOPS_FACT = "11,000 to 12,000"
SOURCE = ("doc_id", "doc_version", "start", "end", "quote")  # where a citation points in the collection


@pytest.fixture(scope="module")
def http(tmp_path_factory, embedder):
    from fastapi.testclient import TestClient

    settings = Settings(data_dir=tmp_path_factory.mktemp("responses"), seeds_dir=SEEDS_DIR)
    with TestClient(create_app(settings, embedder=embedder)) as c:
        yield c


def events_of(response) -> list[dict]:
    """The events of a Responses stream, checking its framing: ``event:`` names the type of
    the ``data:`` that follows, sequence numbers count up from 0, no [DONE]."""
    frames = response.read().decode().split("\n\n")
    assert frames[-1] == ""
    events = []
    for frame in frames[:-1]:
        head, data = frame.split("\n")
        event = json.loads(data.removeprefix("data: "))
        assert head == f"event: {event['type']}"
        events.append(event)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    return events


def text_and_annotations(body: dict) -> tuple[str, list[dict]]:
    [message] = body["output"]
    [part] = message["content"]
    return part["text"], part["annotations"]


def check_annotations(text: str, notes: list[dict], client) -> None:
    """Each annotation covers its "[n]" marker in the output text, its quote is the stored
    text at its offsets, and its URL resolves, through the API, to the same span."""
    for a in notes:
        assert a["type"] == "url_citation" and text[a["start_index"]:a["end_index"]] == f"[{a['marker']}]"
        doc = client.get(f"/v1/documents/{a['doc_id']}", params={"version": a["doc_version"]}).json()
        assert doc["text"][a["start"]:a["end"]] == a["quote"] and doc["title"] == a["title"]
        url = urlsplit(a["url"])
        resolved = client.get(f"{url.path}?{url.query}")
        assert resolved.status_code == 200, resolved.text
        assert resolved.json()["span"]["text"] == a["quote"]


# -- in process: shapes and errors ----------------------------------------------------------------


def test_an_answer_is_a_response_whose_annotations_carry_the_citations(http):
    r = http.post("/v1/responses", json={"model": "citeqa", "input": TROOPS_QUESTION, "temperature": 0.2,
                                         "reasoning": {"effort": "low"}, "store": True})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "response" and body["id"].startswith("resp_") and body["status"] == "completed"
    text, notes = text_and_annotations(body)
    assert TROOPS_FACT in text and body["answer_status"] == "answered" and notes
    check_annotations(text, notes, http)
    assert [{k: a[k] for k in SOURCE} for a in notes] == [{k: c[k] for k in SOURCE} for c in body["citations"]]


@pytest.mark.parametrize("question", [TROOPS_QUESTION, UNSUPPORTED_QUESTION])
def test_streaming_equals_non_streaming(http, question):
    payload = {"input": [{"role": "user", "content": [{"type": "input_text", "text": question}]}]}
    whole = http.post("/v1/responses", json=payload).json()
    with http.stream("POST", "/v1/responses", json={**payload, "stream": True}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = events_of(r)
    text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    added = [e for e in events if e["type"] == "response.output_text.annotation.added"]
    final = events[-1]
    assert final["type"] == "response.completed"
    whole_text, whole_notes = text_and_annotations(whole)
    assert text == whole_text == text_and_annotations(final["response"])[0]
    assert [e["annotation"] for e in added] == whole_notes == text_and_annotations(final["response"])[1]
    assert [e["annotation_index"] for e in added] == list(range(len(added)))
    ignored = ("id", "created_at", "completed_at", "output")
    assert {k: v for k, v in final["response"].items() if k not in ignored} == {
        k: v for k, v in whole.items() if k not in ignored}
    check_annotations(text, whole_notes, http)
    if question == UNSUPPORTED_QUESTION:
        assert whole["answer_status"] == "unsupported" and "do not contain an answer" in text


def test_a_follow_up_continues_a_kept_conversation_about_the_same_subject(http):
    http.post("/v1/documents", json={"doc_id": "crimea", "title": "Crimean War hospitals", "text":
              "Florence Nightingale nursed British soldiers at Scutari. Thousands of soldiers were wounded "
              "at the Battle of Inkerman."})
    first = http.post("/v1/responses", json={"input": "Who is Russia's ambassador to Pyongyang?",
                                             "instructions": "Answer briefly."}).json()
    follow = http.post("/v1/responses", json={"input": "Where did he say North Korean educators would teach?",
                                              "previous_response_id": first["id"]})
    assert follow.status_code == 200, follow.text
    body = follow.json()
    text, notes = text_and_annotations(body)
    assert body["previous_response_id"] == first["id"] and body["instructions"] is None
    assert "Kazan" in text and notes[0]["doc_id"] == "seed-russia-north-korea"
    # Both are kept, as returned.
    assert http.get(f"/v1/responses/{first['id']}").json() == first
    assert http.get(f"/v1/responses/{body['id']}").json() == body


def test_a_follow_up_s_history_is_the_conversation_continued_without_its_instructions(tmp_path, embedder):
    from fastapi.testclient import TestClient

    scripted = ScriptedGenerator("Nobody knows.")
    app = create_app(Settings(data_dir=tmp_path / "d", seeds_dir=SEEDS_DIR), embedder, {"scripted": scripted})
    with TestClient(app) as c:
        first = c.post("/v1/responses", json={"model": "scripted", "instructions": "Be brief.", "input": [
            {"role": "user", "content": "Who sent troops?"}, {"role": "assistant", "content": "Pyongyang."},
            {"role": "user", "content": TROOPS_QUESTION}]}).json()
        answer = text_and_annotations(first)[0]
        second = c.post("/v1/responses", json={"model": "scripted", "input": "And how many were wounded?",
                                               "instructions": "Be thorough.", "previous_response_id": first["id"]})
        assert second.status_code == 200, second.text
        third = c.post("/v1/responses", json={"model": "scripted", "input": "Where were the troops sent?",
                                              "truncation": "auto", "previous_response_id": second.json()["id"]})
        assert third.status_code == 200, third.text
    turns = [[(t.role, t.content) for t in history] for history in scripted.histories]
    assert turns[0] == [("system", "Be brief."), ("user", "Who sent troops?"), ("assistant", "Pyongyang.")]
    continued = [("user", "Who sent troops?"), ("assistant", "Pyongyang."), ("user", TROOPS_QUESTION),
                 ("assistant", answer)]
    assert turns[1] == [("system", "Be thorough."), *continued]
    assert turns[2] == [*continued, ("user", "And how many were wounded?"),
                        ("assistant", text_and_annotations(second.json())[0])]


def test_store_false_keeps_nothing_and_delete_forgets(http):
    unkept = http.post("/v1/responses", json={"input": TROOPS_QUESTION, "store": False}).json()
    assert unkept["store"] is False
    assert http.get(f"/v1/responses/{unkept['id']}").status_code == 404
    follow = http.post("/v1/responses", json={"input": "And how many?", "previous_response_id": unkept["id"]})
    assert follow.status_code == 404 and follow.json()["error"]["code"] == "previous_response_not_found"

    kept = http.post("/v1/responses", json={"input": TROOPS_QUESTION}).json()
    assert http.delete(f"/v1/responses/{kept['id']}").json() == {"id": kept["id"], "object": "response.deleted",
                                                                 "deleted": True}
    assert http.get(f"/v1/responses/{kept['id']}").status_code == 404
    assert http.delete(f"/v1/responses/{kept['id']}").status_code == 404


def test_a_streamed_response_is_kept_and_can_be_continued(http):
    with http.stream("POST", "/v1/responses", json={"input": "Who is Russia's ambassador to Pyongyang?",
                                                   "stream": True}) as r:
        completed = events_of(r)[-1]["response"]
    assert http.get(f"/v1/responses/{completed['id']}").json() == completed
    follow = http.post("/v1/responses", json={"input": "Where did he say North Korean educators would teach?",
                                              "previous_response_id": completed["id"]}).json()
    assert "Kazan" in text_and_annotations(follow)[0]


LONG = "How many troops? " * 200


@pytest.mark.parametrize("payload, status, code, says", [
    ({"input": ""}, 422, "invalid_request", "question"),
    ({"input": []}, 422, "invalid_request", "no messages"),
    ({}, 422, "invalid_request", "input"),
    ({"input": [{"role": "user", "content": "What?"}, {"role": "assistant", "content": "Yes."}]}, 422,
     "invalid_request", "user message"),
    ({"input": [{"role": "wizard", "content": "hi"}]}, 422, "invalid_request", "input"),
    ({"model": "gpt-17", "input": "hi there"}, 404, "model_not_found", "gpt-17"),
    ({"model": "citeqa@nowhere", "input": TROOPS_QUESTION}, 404, "not_found", "nowhere"),
    ({"input": TROOPS_QUESTION, "previous_response_id": "resp_unknown"}, 404, "previous_response_not_found",
     "resp_unknown"),
    ({"input": LONG}, 422, "invalid_request", "limit of 2000 characters"),
    ({"input": [{"role": "user", "content": "hi"}] * 51}, 422, "invalid_request", "limit of 50 messages"),
    ({"input": "hi", "instructions": "x" * 20_001}, 422, "invalid_request", "limit of 20000 characters"),
    ({"input": TROOPS_QUESTION, "tool_choice": "required", "tools": [{"type": "function", "name": "f"}]}, 422,
     "invalid_request", "tools"),
    ({"model": "openai", "input": TROOPS_QUESTION}, 503, "generator_unavailable", ""),
    ({"input": TROOPS_QUESTION, "generator_options": {"temperature": 1}}, 422, "invalid_generator_options", ""),
])
def test_bad_requests_get_clear_errors(http, payload, status, code, says):
    r = http.post("/v1/responses", json=payload)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["code"] == code and says in error["message"], error


def test_responses_are_kept_for_the_key_that_made_them(client):
    _, alice = client.app.state.keys.create("alice", ["read"], rate_per_s=0)
    _, bob = client.app.state.keys.create("bob", ["read"], rate_per_s=0)
    made = client.post("/v1/responses", json={"input": TROOPS_QUESTION},
                       headers={"Authorization": f"Bearer {alice}"}).json()
    assert client.get(f"/v1/responses/{made['id']}", headers={"Authorization": f"Bearer {alice}"}).status_code == 200
    assert client.get(f"/v1/responses/{made['id']}", headers={"Authorization": f"Bearer {bob}"}).status_code == 404
    follow = client.post("/v1/responses", json={"input": "And how many?", "previous_response_id": made["id"]},
                         headers={"Authorization": f"Bearer {bob}"})
    assert follow.status_code == 404


class _UpstreamTimesOut:
    def __iter__(self):
        raise GeneratorError("timeout", "the upstream took too long")


def test_a_generator_failing_mid_answer_is_an_error_whole_or_streamed(tmp_path, embedder):
    from fastapi.testclient import TestClient

    failing = ScriptedGenerator()
    failing.pieces = _UpstreamTimesOut()  # read only once the answer is being drafted
    app = create_app(Settings(data_dir=tmp_path / "d", seeds_dir=SEEDS_DIR), embedder, {"failing": failing})
    payload = {"model": "failing", "input": TROOPS_QUESTION}
    with TestClient(app) as c:
        r = c.post("/v1/responses", json=payload)
        assert r.status_code == 504 and r.json()["error"]["message"] == "the upstream took too long", r.text
        with c.stream("POST", "/v1/responses", json={**payload, "stream": True}) as s:
            events = events_of(s)
        kept_id = events[0]["response"]["id"]
        assert c.get(f"/v1/responses/{kept_id}").status_code == 404  # a failed response is not kept
    assert [e["type"] for e in events[-2:]] == ["error", "response.failed"]
    assert events[-2]["code"] == "upstream_timeout" and events[-2]["status"] == 504
    assert events[-1]["response"]["status"] == "failed"
    assert events[-1]["response"]["error"] == {"code": "upstream_timeout", "message": "the upstream took too long"}


def test_chat_and_responses_agree_on_the_citations(http):
    for question in (TROOPS_QUESTION, "Where are wounded Russian soldiers being treated?"):
        chat = http.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": question}]}).json()
        message = chat["choices"][0]["message"]
        response = http.post("/v1/responses", json={"input": question}).json()
        text, notes = text_and_annotations(response)
        assert text == message["content"] and notes
        assert [{k: a[k] for k in SOURCE} for a in notes] == [{k: c[k] for k in SOURCE} for c in message["citations"]]
        chat_spans = [(a["url_citation"]["start_index"], a["url_citation"]["end_index"], a["url_citation"]["url"])
                      for a in message["annotations"]]
        assert chat_spans == [(a["start_index"], a["end_index"], a["url"]) for a in notes]


# -- the official openai client against a real `citeqa serve` -----------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("responses-serve")
    s = Server(root / "data", root).start()
    yield s
    s.kill_quietly()


def _sources(annotations) -> list[dict]:
    """What the user's code reads from the client's annotation objects: every citation's
    quote and where it is in the document (citeqa's fields beside OpenAI's)."""
    out = []
    for a in annotations:
        extra = a.model_extra or {}
        assert a.type == "url_citation" and a.url and a.title
        out.append({"start_index": a.start_index, "end_index": a.end_index, "url": a.url,
                    **{k: extra[k] for k in (*SOURCE, "marker", "sentence_id", "support")}})
    return out


def _contract(http: httpx.Client, text: str, sources: list[dict]) -> None:
    for s in sources:
        assert text[s["start_index"]:s["end_index"]] == f"[{s['marker']}]"
        doc = http.get(f"/v1/documents/{s['doc_id']}", params={"version": s["doc_version"]}).json()
        assert doc["text"][s["start"]:s["end"]] == s["quote"]
        assert s["sentence_id"].startswith(f"{s['doc_id']}:") and 0 <= s["support"] <= 1


@pytest.mark.slow
@pytest.mark.parametrize("model", ["citeqa", pytest.param("llamacpp", marks=requires_llm)])
def test_official_openai_client_whole_and_streamed(server, model):
    from openai import OpenAI

    client = OpenAI(base_url=f"{server.url}/v1", api_key="not-needed", timeout=120)
    options = {"model": model, "max_output_tokens": 96, "temperature": 0}
    with httpx.Client(base_url=server.url) as http:
        for question in (TROOPS_QUESTION, "Where are wounded Russian soldiers being treated?", UNSUPPORTED_QUESTION):
            whole = client.responses.create(input=question, **options)
            [part] = whole.output[0].content
            sources = _sources(part.annotations)
            _contract(http, whole.output_text, sources)
            assert whole.output_text == part.text and whole.status == "completed"
            extra = whole.model_extra or {}
            assert [{k: c[k] for k in SOURCE} for c in extra["citations"]] == [
                {k: s[k] for k in SOURCE} for s in sources]
            # The chat endpoint, asked the same (greedy decoding: the same draft), cites the same.
            chat = client.chat.completions.create(model=model, messages=[{"role": "user", "content": question}],
                                                  max_tokens=96, temperature=0).choices[0].message
            assert chat.content == whole.output_text
            assert [{k: c[k] for k in SOURCE} for c in (chat.model_extra or {})["citations"]] == [
                {k: s[k] for k in SOURCE} for s in sources]

            with client.responses.stream(input=question, **options) as stream:
                deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
                final = stream.get_final_response()
            assert "".join(deltas) == final.output_text == whole.output_text
            streamed = _sources(final.output[0].content[0].annotations)
            _contract(http, final.output_text, streamed)
            same = ("start_index", "end_index", *SOURCE)
            assert [{k: s[k] for k in same} for s in streamed] == [{k: s[k] for k in same} for s in sources]

            events = list(client.responses.create(input=question, stream=True, **options))
            added = [e.annotation for e in events if e.type == "response.output_text.annotation.added"]
            assert [{k: a[k] for k in SOURCE} for a in added] == [{k: s[k] for k in SOURCE} for s in sources]
            if question == TROOPS_QUESTION:
                assert TROOPS_FACT in whole.output_text and sources
            if question == UNSUPPORTED_QUESTION:
                assert sources == [] and extra["answer_status"] == "unsupported"


@pytest.mark.slow
def test_official_openai_client_follow_up_and_retrieve(server):
    from openai import NotFoundError, OpenAI

    client = OpenAI(base_url=f"{server.url}/v1", api_key="not-needed", timeout=120)
    first = client.responses.create(model="citeqa", input="Who is Russia's ambassador to Pyongyang?")
    follow = client.responses.create(model="citeqa", input="Where did he say North Korean educators would teach?",
                                     previous_response_id=first.id)
    assert "Kazan" in follow.output_text and follow.previous_response_id == first.id
    assert client.responses.retrieve(first.id).output_text == first.output_text
    with pytest.raises(NotFoundError):
        client.responses.create(model="citeqa", input="And then?", previous_response_id="resp_gone")
