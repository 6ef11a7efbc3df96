"""Every input that costs work has a limit (api/settings.py), checked before the work
starts and answered with a 422 that names the field and the limit: search queries, ask
questions, chat messages (how many, how long together, the question's own length) and
document metadata. Over the app (real model and store); the work itself is replaced by a
tripwire, so a request that got past its limit fails loudly instead of slowly."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from citeqa.api.app import create_app
from citeqa.api.settings import Settings
from tests.support.corpus import SEEDS_DIR, TROOPS_QUESTION

LIMITS = Settings(_env_file=None)  # the defaults the cases below are sized against
QUESTION_MESSAGE = f"longer than the limit of {LIMITS.max_question_chars} characters"


@pytest.fixture(scope="module")
def app_client(tmp_path_factory, embedder):
    settings = Settings(data_dir=tmp_path_factory.mktemp("limits") / "data", seeds_dir=SEEDS_DIR, _env_file=None)
    with TestClient(create_app(settings, embedder=embedder)) as c:
        yield c


@pytest.fixture
def no_work(app_client, monkeypatch):
    """Searching, answering and ingesting raise: a request over a limit must not reach them."""
    services = app_client.app.state.services

    def tripwire(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the work started before the limits were checked")

    for target, name in [(services.retriever, "search"), (services.answerer, "ask"),
                         (services.answerer, "stream"), (services.ingestor, "ingest")]:
        monkeypatch.setattr(target, name, tripwire)
    return app_client


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def chat(messages: list[dict[str, str]]) -> dict[str, Any]:
    return {"model": "citeqa", "messages": messages}


def words(chars: int) -> str:
    """Distinct words, exactly ``chars`` characters: what makes lexical search expensive."""
    text = " ".join(f"w{i}" for i in range(chars // 2))
    return text[:chars]


OVER_LIMITS = {
    "search-query": ("/v1/search", {"query": words(LIMITS.max_query_chars + 1)},
                     f"query: longer than the limit of {LIMITS.max_query_chars} characters (got 2001)"),
    "search-megabyte-query": ("/v1/search", {"query": words(1_000_000)}, "query: longer than the limit"),
    "ask-question": ("/v1/ask", {"question": "Why " + "x" * LIMITS.max_question_chars},
                     f"question: {QUESTION_MESSAGE}"),
    "chat-turns": ("/v1/chat/completions",
                   chat([user("Hi."), {"role": "assistant", "content": "Hello."}] * 25 + [user(TROOPS_QUESTION)]),
                   f"messages: more than the limit of {LIMITS.max_chat_messages} messages (got 51)"),
    "chat-characters": ("/v1/chat/completions", chat([user("y" * 9_500), user("z" * 9_500), user("Why " * 250 + "?")]),
                        f"messages: longer together than the limit of {LIMITS.max_chat_chars} characters (got 20001)"),
    "chat-megabyte-history": ("/v1/chat/completions", chat([user("w " * 500_000), user("And how many were wounded?")]),
                              "messages: longer together than the limit"),
    "chat-question": ("/v1/chat/completions", chat([user("Why " + "x" * LIMITS.max_question_chars)]),
                      f"messages.0.content: {QUESTION_MESSAGE}"),
    "document-metadata": ("/v1/documents",
                          {"text": "A small text.", "metadata": {"notes": "n" * LIMITS.max_metadata_bytes}},
                          f"metadata: larger than the limit of {LIMITS.max_metadata_bytes} bytes as JSON"),
}


@pytest.mark.parametrize("case", OVER_LIMITS)
def test_over_a_limit_is_a_422_that_says_the_limit_before_any_work(no_work, case):
    path, body, message = OVER_LIMITS[case]
    r = no_work.post(path, json=body)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_request" and message in error["message"], error


def test_at_the_limits_requests_are_served(app_client):
    assert app_client.post("/v1/search", json={"query": words(LIMITS.max_query_chars), "top_k": 1}).status_code == 200
    question = TROOPS_QUESTION.ljust(LIMITS.max_question_chars)
    assert app_client.post("/v1/ask", json={"question": question}).status_code == 200
    turns = [user("Hi."), {"role": "assistant", "content": "Hello."}] * ((LIMITS.max_chat_messages - 2) // 2)
    filler = LIMITS.max_chat_chars - sum(len(t["content"]) for t in turns) - len(TROOPS_QUESTION)
    messages = [{"role": "system", "content": "s" * filler}, *turns, user(TROOPS_QUESTION)]
    assert (len(messages), sum(len(m["content"]) for m in messages)) == (LIMITS.max_chat_messages,
                                                                         LIMITS.max_chat_chars)
    assert app_client.post("/v1/chat/completions", json=chat(messages)).status_code == 200
    metadata = {"notes": "n" * (LIMITS.max_metadata_bytes - len('{"notes":""}'))}
    r = app_client.post("/v1/documents", json={"text": "Metadata at its limit.", "metadata": metadata})
    assert r.status_code == 201, r.text


def test_the_limits_are_the_server_s_settings(tmp_path, embedder):
    settings = Settings(data_dir=tmp_path / "data", seeds_dir=None, max_query_chars=10, max_question_chars=12,
                        max_chat_messages=2, max_chat_chars=30, max_metadata_bytes=20, _env_file=None)
    with TestClient(create_app(settings, embedder=embedder)) as c:
        assert c.post("/v1/search", json={"query": "ten chars!"}).status_code == 200
        assert "limit of 10 characters" in c.post("/v1/search", json={"query": "eleven chars"}).text
        assert "limit of 12 characters" in c.post("/v1/ask", json={"question": "Who wrote this?"}).text
        three = chat([user("a"), user("b"), user("Who?")])
        assert "limit of 2 messages" in c.post("/v1/chat/completions", json=three).text
        long_history = chat([user("x" * 28), user("Who?")])
        assert "limit of 30 characters" in c.post("/v1/chat/completions", json=long_history).text
        r = c.post("/v1/documents", json={"text": "Some text.", "metadata": {"k": "v" * 20}})
        assert r.status_code == 422 and "limit of 20 bytes" in r.text
