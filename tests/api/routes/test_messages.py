"""Anthropic-compatible messages (api/routes/messages.py): in process for the shapes and the
errors, then the official ``anthropic`` client against a real ``citeqa serve``, whole and
streamed, reading every citation's quote and source offsets from the objects it returns.
(The dialect without a server: tests/api/test_anthropic_messages.py.)"""

from __future__ import annotations

import httpx
import pytest

from citeqa.api.app import create_app
from citeqa.qa.types import GeneratorError
from tests.api.test_anthropic_messages import accumulate
from tests.support.corpus import SEEDS_DIR, TROOPS_QUESTION, UNSUPPORTED_QUESTION
from tests.support.llm import requires_llm
from tests.support.scripted import ScriptedGenerator
from tests.support.servers import Server

TROOPS_FACT = "11,000 to 12,000"
WOUNDED_QUESTION = "Where are wounded Russian soldiers being treated?"
HEADERS = {"anthropic-version": "2023-06-01"}


def user(content) -> dict:
    return {"role": "user", "content": content}


def ask(question: str, **fields) -> dict:
    return {"model": "citeqa", "max_tokens": 256, "messages": [user(question)], **fields}


def streamed(client, payload: dict) -> tuple[list[dict], list[dict]]:
    with client.stream("POST", "/v1/messages", json={**payload, "stream": True}, headers=HEADERS) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        return accumulate([line + "\n" for line in r.iter_lines()])


def locations(content: list[dict]) -> list[dict]:
    return [c for block in content for c in block.get("citations") or []]


def check_contract(http, content: list[dict]) -> None:
    """Every char_location indexes the stored text of its document version, and its URL
    resolves to that span."""
    for c in locations(content):
        doc = http.get(f"/v1/documents/{c['doc_id']}", params={"version": c["doc_version"]}).json()
        assert doc["text"][c["start_char_index"]:c["end_char_index"]] == c["cited_text"]
        url = httpx.URL(c["url"])
        assert http.get(f"{url.path}?{url.query.decode()}").json()["span"]["text"] == c["cited_text"]


# -- in process: shapes and errors ----------------------------------------------------------------


def test_a_message_has_a_block_per_cited_claim(client):
    r = client.post("/v1/messages", json=ask(TROOPS_QUESTION, temperature=0.2, stop_sequences=["\n\n"],
                                             metadata={"user_id": "u1"}), headers=HEADERS)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["type"] == "message" and body["id"].startswith("msg_") and body["role"] == "assistant"
    assert body["model"] == "citeqa" and body["stop_reason"] == "end_turn" and body["status"] == "answered"
    text = "".join(b["text"] for b in body["content"])
    assert TROOPS_FACT in text and "[1]" not in text
    assert locations(body["content"]) and all(b["type"] == "text" for b in body["content"])
    check_contract(client, body["content"])


@pytest.mark.parametrize("question", [TROOPS_QUESTION, WOUNDED_QUESTION, UNSUPPORTED_QUESTION])
def test_streamed_equals_whole(client, question):
    whole = client.post("/v1/messages", json=ask(question)).json()
    events, blocks = streamed(client, ask(question))
    assert [e["type"] for e in events[:2]] == ["message_start", "ping"]
    assert [e["type"] for e in events[-2:]] == ["message_delta", "message_stop"]
    assert blocks == [{k: v for k, v in b.items() if v is not None} for b in whole["content"]]
    final = events[-2]
    assert (final["status"], final["short_answer"], final["usage"]) == (whole["status"], whole["short_answer"],
                                                                        whole["usage"])
    if question == UNSUPPORTED_QUESTION:
        assert whole["status"] == "unsupported" and not locations(whole["content"])
        assert "do not contain an answer" in whole["content"][0]["text"]


def test_messages_and_chat_agree_on_the_citations(client):
    chat = client.post("/v1/chat/completions", json={"messages": [user(WOUNDED_QUESTION)]}).json()["citations"]
    found = locations(client.post("/v1/messages", json=ask(WOUNDED_QUESTION)).json()["content"])
    assert chat and [(c["doc_id"], c["doc_version"], c["start"], c["end"], c["quote"], c["marker"]) for c in chat] == [
        (c["doc_id"], c["doc_version"], c["start_char_index"], c["end_char_index"], c["cited_text"], c["marker"])
        for c in found]


def test_follow_up_with_history(client):
    client.post("/v1/documents", json={"doc_id": "crimea", "title": "Crimean War hospitals", "text":
                "Florence Nightingale nursed British soldiers at Scutari. Thousands of soldiers were wounded "
                "at the Battle of Inkerman."})
    first = client.post("/v1/messages", json=ask("Who is Russia's ambassador to Pyongyang?")).json()
    follow = client.post("/v1/messages", json={"model": "citeqa", "max_tokens": 256, "system": "Be brief.",
                                               "messages": [
        user("Who is Russia's ambassador to Pyongyang?"), {"role": "assistant", "content": first["content"]},
        user([{"type": "text", "text": "Where did he say North Korean educators would teach?"}])]}).json()
    assert "Kazan" in "".join(b["text"] for b in follow["content"])
    assert locations(follow["content"])[0]["doc_id"] == "seed-russia-north-korea"


def test_document_blocks_naming_stored_documents_scope_the_answer(client):
    client.post("/v1/documents", json={"doc_id": "troops-note", "title": "A note", "text":
                "North Korea sent about 11,000 to 12,000 soldiers to Russia in 2024."})
    documents = [{"type": "document", "source": {"type": "file", "file_id": d}, "citations": {"enabled": True}}
                 for d in ("seed-russia-north-korea", "troops-note")]
    payload = {"model": "citeqa", "max_tokens": 256, "messages": [user([*documents, {"type": "text",
                                                                                      "text": TROOPS_QUESTION}])]}
    body = client.post("/v1/messages", json=payload).json()
    found = locations(body["content"])
    assert found and all(c["doc_id"] in ("seed-russia-north-korea", "troops-note") for c in found)
    assert all(c["document_index"] == ["seed-russia-north-korea", "troops-note"].index(c["doc_id"]) for c in found)
    only = client.post("/v1/messages", json={**payload, "messages": [user([documents[1], {
        "type": "text", "text": TROOPS_QUESTION}])]}).json()
    assert {c["doc_id"] for c in locations(only["content"])} == {"troops-note"}
    assert {c["document_index"] for c in locations(only["content"])} == {0}
    events, blocks = streamed(client, payload)
    assert blocks == [{k: v for k, v in b.items() if v is not None} for b in body["content"]]


def _too_long(settings) -> dict:
    return ask("x" * (settings.max_question_chars + 1))


@pytest.mark.parametrize("payload, status, kind, says", [
    ({"model": "citeqa", "max_tokens": 9, "messages": []}, 422, "invalid_request_error", "messages"),
    (ask("hi there", model="gpt-17"), 404, "not_found_error", "does not exist"),
    ({"messages": [user(TROOPS_QUESTION)]}, 422, "invalid_request_error", "max_tokens"),
    ({"model": "citeqa", "max_tokens": 9, "messages": [user("What?"), {"role": "assistant", "content": "Yes."}]},
     422, "invalid_request_error", "last message must be a user message"),
    ({"model": "citeqa", "max_tokens": 9, "messages": [user([
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "Seoul protested."}},
        {"type": "text", "text": "Who protested?"}])]}, 422, "invalid_request_error", "POST /v1/documents"),
    (ask(TROOPS_QUESTION, model="citeqa@nowhere"), 404, "not_found_error", "nowhere"),
    (ask(TROOPS_QUESTION, passages=100_000), 422, "invalid_request_error", "passages"),
    (ask(TROOPS_QUESTION, generator_options={"temperature": 1}), 422, "invalid_request_error", "generator_options"),
    ("too long", 422, "invalid_request_error", "longer than the limit"),
])
def test_bad_requests_get_clear_errors_in_anthropic_s_shape(client, settings, payload, status, kind, says):
    r = client.post("/v1/messages", json=_too_long(settings) if payload == "too long" else payload)
    assert r.status_code == status, r.text
    body = r.json()
    assert body["type"] == "error" and body["error"]["type"] == kind and says in body["error"]["message"], body


def test_too_many_characters_together_are_refused(client, settings):
    half = "y" * (settings.max_chat_chars // 2 + 1)
    r = client.post("/v1/messages", json={"model": "citeqa", "max_tokens": 9, "system": half, "messages": [
        user(half), {"role": "assistant", "content": "ok"}, user(TROOPS_QUESTION)]})
    assert r.status_code == 422 and "longer together" in r.json()["error"]["message"]


class _UpstreamTimesOut:
    def __iter__(self):
        raise GeneratorError("timeout", "the upstream took too long")


def test_a_generator_failing_is_an_error_whole_or_streamed(tmp_path, embedder):
    from fastapi.testclient import TestClient

    from citeqa.api.settings import Settings

    failing = ScriptedGenerator()
    failing.pieces = _UpstreamTimesOut()  # read only once the answer is being drafted
    app = create_app(Settings(data_dir=tmp_path / "d", seeds_dir=SEEDS_DIR), embedder, {"failing": failing})
    with TestClient(app) as c:
        r = c.post("/v1/messages", json=ask(TROOPS_QUESTION, model="failing"))
        assert r.status_code == 504 and r.json()["error"] == {
            "type": "api_error", "message": "the upstream took too long", "code": "upstream_timeout"}
        events, _ = streamed(c, ask(TROOPS_QUESTION, model="failing"))
    assert events[0]["type"] == "message_start" and events[-1]["type"] == "error"
    assert events[-1]["error"]["message"] == "the upstream took too long"


@pytest.mark.slow
def test_the_anthropic_client_s_key_header_is_citeqa_s(tmp_path, embedder):
    """The official client sends ``x-api-key`` and ``anthropic-version``: the key is checked
    as citeqa's X-API-Key, a missing or wrong one is its typed 401."""
    import anthropic
    from fastapi.testclient import TestClient

    from citeqa.api.settings import Settings

    settings = Settings(data_dir=tmp_path / "d", seeds_dir=SEEDS_DIR, auth="on", auth_reads=True)
    with TestClient(create_app(settings, embedder=embedder)) as c:
        _, reader = c.app.state.keys.create("reader", ["read"])
        client = anthropic.Anthropic(base_url=str(c.base_url), api_key=reader, http_client=c, max_retries=0)
        answer = client.messages.create(model="citeqa", max_tokens=64, messages=[user(TROOPS_QUESTION)])
        assert TROOPS_FACT in "".join(b.text for b in answer.content) and _cited(answer)
        wrong = anthropic.Anthropic(base_url=str(c.base_url), api_key="cq_00000000_wrong", http_client=c,
                                    max_retries=0)
        with pytest.raises(anthropic.AuthenticationError):
            wrong.messages.create(model="citeqa", max_tokens=64, messages=[user(TROOPS_QUESTION)])


# -- the official anthropic client against a real `citeqa serve` -----------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("messages-serve")
    s = Server(root / "data", root).start()
    yield s
    s.kill_quietly()


def _cited(message) -> list:
    return [c for block in message.content for c in block.citations or []]


@pytest.mark.slow
@pytest.mark.parametrize("model", ["citeqa", pytest.param("llamacpp", marks=requires_llm)])
def test_official_anthropic_client_whole_and_streamed(server, model):
    import anthropic

    client = anthropic.Anthropic(base_url=server.url, api_key="not-needed", timeout=120, max_retries=0)
    http = server.client(timeout=120)
    for question in (TROOPS_QUESTION, WOUNDED_QUESTION, UNSUPPORTED_QUESTION):
        messages = [{"role": "user", "content": question}]
        whole = client.messages.create(model=model, max_tokens=96, messages=messages)
        with client.messages.stream(model=model, max_tokens=96, messages=messages) as stream:
            text = "".join(stream.text_stream)
            final = stream.get_final_message()
        assert whole.type == "message" and whole.stop_reason == "end_turn"
        assert text == "".join(b.text for b in whole.content) == "".join(b.text for b in final.content)
        assert [b.model_dump() for b in final.content] == [b.model_dump() for b in whole.content]
        cited = _cited(whole)
        for c in cited:  # what a user's code reads: the quote and where it is in the document
            assert c.type == "char_location" and c.document_index >= 0
            doc = http.get(f"/v1/documents/{c.doc_id}", params={"version": c.doc_version}).json()
            assert doc["text"][c.start_char_index:c.end_char_index] == c.cited_text
            assert c.document_title == doc["title"] and c.file_id == c.doc_id
        chat = http.post("/v1/chat/completions", json={"model": model, "max_tokens": 96, "temperature": 0,
                                                       "messages": messages}).json()
        assert [(c["doc_id"], c["start"], c["end"], c["quote"]) for c in chat["citations"]] == [
            (c.doc_id, c.start_char_index, c.end_char_index, c.cited_text) for c in cited]
        assert whole.model_extra is not None and whole.model_extra["status"] == chat["status"]
        if question == TROOPS_QUESTION and model == "citeqa":
            assert TROOPS_FACT in text and whole.model_extra["status"] == "answered"
        if question == UNSUPPORTED_QUESTION:
            assert not cited
    http.close()


@pytest.mark.slow
def test_official_anthropic_client_gets_typed_errors(server):
    import anthropic

    client = anthropic.Anthropic(base_url=server.url, api_key="not-needed", max_retries=0)
    with pytest.raises(anthropic.NotFoundError) as missing:
        client.messages.create(model="gpt-17", max_tokens=9, messages=[user("hi there")])
    assert missing.value.body["error"]["type"] == "not_found_error" and "gpt-17" in missing.value.message
    with pytest.raises(anthropic.UnprocessableEntityError) as refused:
        client.messages.create(model="citeqa", max_tokens=9, messages=[user([
            {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "Seoul protested."}},
            {"type": "text", "text": "Who protested?"}])])
    assert "POST /v1/documents" in refused.value.message
