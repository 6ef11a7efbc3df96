"""The frameworks chatbots are built with, pointed at a real `citeqa serve`, whole and streamed,
for the extractive generator and llamacpp: each test reads every citation (quote, doc_id,
doc_version, start, end) from the object the framework hands the user, where the README
says to read it, and checks it against the stored document (the citation contract).

- LlamaIndex ``OpenAILike`` (chat completions): citations are in ``response.raw``, the
  openai client's object, whose unknown fields LlamaIndex keeps (``model_extra``).
- LangChain ``ChatOpenAI`` on chat completions drops them (it copies only the fields it
  knows into the message); with ``use_responses_api=True`` they are the ``annotations`` of
  the message's text blocks, citeqa's fields kept beside OpenAI's.
- LangChain ``ChatAnthropic`` (Messages API): ``citations`` of the text blocks,
  ``char_location``s with citeqa's fields beside Anthropic's.

Nothing here may reach the network: tiktoken fetches its BPE files at run time when a
client counts tokens, so the clients run with an empty tiktoken cache and no way out but to
the server (``offline``). The README's section on clients is run as written, too."""

from __future__ import annotations

import contextlib
import io
import re
import socket
from pathlib import Path
from typing import Any, Iterable

import httpx
import pytest

from tests.support.corpus import PROJECT_ROOT, TROOPS_QUESTION, UNSUPPORTED_QUESTION
from tests.support.llm import requires_llm
from tests.support.servers import Server

pytestmark = pytest.mark.slow

TROOPS_FACT = "11,000 to 12,000"
QUESTIONS = (TROOPS_QUESTION, "Where are wounded Russian soldiers being treated?", UNSUPPORTED_QUESTION)
SOURCE = ("quote", "doc_id", "doc_version", "start", "end")  # where a citation points in the collection
MODELS = ["citeqa", pytest.param("llamacpp", marks=requires_llm)]
# Greedy decoding and a short answer: llamacpp drafts the same answer for every client.
SAMPLING: dict[str, Any] = {"temperature": 0, "max_tokens": 96}
_LOOPBACK = ("127.0.0.1", "::1", "localhost")


class Blocked(AssertionError):
    """A client tried to reach something other than the citeqa server."""


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """No name resolution or connection but to this machine, and an empty tiktoken cache:
    a client that fetched a tiktoken encoding (or anything else) while answering fails the
    test, instead of passing because this machine happens to have it cached."""
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "empty-tiktoken-cache"))
    resolve, connect = socket.getaddrinfo, socket.socket.connect

    def guarded_resolve(host, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else host
        if name not in _LOOPBACK:
            raise Blocked(f"a client looked up {name!r}: only the citeqa server may be reached")
        return resolve(host, *args, **kwargs)

    def guarded_connect(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in _LOOPBACK:
            raise Blocked(f"a client connected to {address!r}: only the citeqa server may be reached")
        return connect(sock, address)

    monkeypatch.setattr(socket, "getaddrinfo", guarded_resolve)
    monkeypatch.setattr(socket.socket, "connect", guarded_connect)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("frameworks-serve")
    s = Server(root / "data", root).start()
    yield s
    s.kill_quietly()


@pytest.fixture
def http(server):
    with server.client(timeout=120) as c:
        yield c


def sources(citations: Iterable[dict[str, Any]], **renamed: str) -> list[dict[str, Any]]:
    """Each citation's SOURCE fields (``renamed``: the dialect's name for one of them)."""
    return [{k: c[renamed.get(k, k)] for k in SOURCE} for c in citations]


def check_contract(http: httpx.Client, cited: list[dict[str, Any]]) -> None:
    """text[start:end] == quote in the stored document version the citation names."""
    for c in cited:
        doc = http.get(f"/v1/documents/{c['doc_id']}", params={"version": c["doc_version"]}).json()
        assert doc["text"][c["start"]:c["end"]] == c["quote"], c


def ask_chat(http: httpx.Client, model: str, question: str) -> dict[str, Any]:
    """What /v1/chat/completions answers, for comparing what each client carries with it."""
    body = {"model": model, "messages": [{"role": "user", "content": question}], **SAMPLING}
    return http.post("/v1/chat/completions", json=body).json()["choices"][0]["message"]


def test_the_guard_stops_a_download(offline):
    with pytest.raises(Blocked):
        httpx.get("https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken")


# -- LlamaIndex: OpenAILike on chat completions -----------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_llamaindex_reads_every_citation_from_the_raw_response(server, http, model):
    from llama_index.core.llms import ChatMessage
    from llama_index.llms.openai_like import OpenAILike

    llm = OpenAILike(api_base=f"{server.url}/v1", api_key="unused", model=model, is_chat_model=True,
                     temperature=0, max_tokens=SAMPLING["max_tokens"], timeout=120)
    cited_answers = 0
    for question in QUESTIONS:
        messages = [ChatMessage(role="user", content=question)]
        reply = llm.chat(messages)
        extra = reply.raw.choices[0].message.model_extra
        whole = sources(extra["citations"])
        check_contract(http, whole)
        for c in extra["citations"]:
            assert f"[{c['marker']}]" in reply.message.content

        chunks = list(llm.stream_chat(messages))
        text = "".join(chunk.delta or "" for chunk in chunks)
        streamed = [c for chunk in chunks for choice in chunk.raw.choices
                    for c in (choice.delta.model_extra or {}).get("citations", [])]
        final = chunks[-1].raw.model_extra
        assert text == chunks[-1].message.content == reply.message.content
        assert sources(streamed) == sources(final["citations"]) == whole
        assert final["status"] == extra["status"]

        assert sources(ask_chat(http, model, question)["citations"]) == whole
        if question == UNSUPPORTED_QUESTION:
            assert whole == [] and extra["status"] == "unsupported"
        elif model == "citeqa":
            assert whole and extra["status"] == "answered"
        cited_answers += bool(whole)
        if question == TROOPS_QUESTION and model == "citeqa":
            assert TROOPS_FACT in reply.message.content
    assert cited_answers, f"{model} cited nothing: no citation was read"


# -- LangChain: ChatOpenAI ------------------------------------------------------------------------------


def test_langchain_chat_completions_drop_the_citations(server, http):
    """Known loss (README): ChatOpenAI builds its message from the fields it knows. Should
    this fail, a newer langchain-openai keeps them: say so in the README."""
    from langchain_openai import ChatOpenAI

    assert ask_chat(http, "citeqa", TROOPS_QUESTION)["citations"], "the server sent citations"
    llm = ChatOpenAI(base_url=f"{server.url}/v1", api_key="unused", model="citeqa")
    reply = llm.invoke(TROOPS_QUESTION)
    chunks = list(llm.stream(TROOPS_QUESTION))
    streamed = sum(chunks[1:], chunks[0])
    for message in (reply, streamed):
        assert "[1]" in message.text and TROOPS_FACT in message.text
        kept = repr((message.additional_kwargs, message.response_metadata, message.content))
        assert "quote" not in kept and "doc_version" not in kept and "seed-russia" not in kept


def _annotations(message) -> list[dict[str, Any]]:
    """Where the user reads them: each text block's ``annotations``."""
    assert isinstance(message.content, list)
    return [a for block in message.content if block.get("type") == "text" for a in block.get("annotations", [])]


@pytest.mark.parametrize("model", MODELS)
def test_langchain_responses_api_keeps_every_citation(server, http, model):
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(base_url=f"{server.url}/v1", api_key="unused", model=model, use_responses_api=True,
                     timeout=120, **SAMPLING)
    cited_answers = 0
    for question in QUESTIONS:
        reply = llm.invoke(question)
        notes = _annotations(reply)
        whole = sources(notes)
        check_contract(http, whole)
        for a in notes:
            assert a["type"] == "url_citation" and reply.text[a["start_index"]:a["end_index"]] == f"[{a['marker']}]"
            assert reply.text[a["answer_start"]:a["answer_end"]].strip() and a["title"] and a["url"]
            assert a["sentence_id"].startswith(f"{a['doc_id']}:")

        chunks = list(llm.stream(question))
        streamed = sum(chunks[1:], chunks[0])  # how LangChain aggregates a stream
        assert streamed.text == reply.text
        streamed_notes = _annotations(streamed)
        assert sources(streamed_notes) == whole
        assert [(a["start_index"], a["end_index"]) for a in streamed_notes] == [
            (a["start_index"], a["end_index"]) for a in notes]

        # The chat endpoint, asked the same, says and cites the same.
        chat = ask_chat(http, model, question)
        assert chat["content"] == reply.text and sources(chat["citations"]) == whole
        if question == UNSUPPORTED_QUESTION:
            assert whole == []
        elif model == "citeqa":
            assert whole
        cited_answers += bool(whole)
    assert cited_answers, f"{model} cited nothing: no citation was read"


# -- LangChain: ChatAnthropic ---------------------------------------------------------------------------


def _char_locations(message) -> list[dict[str, Any]]:
    """Where the user reads them: each block's ``citations`` (a message without any is a
    plain string: LangChain flattens a lone text block that cites nothing)."""
    if isinstance(message.content, str):
        return []
    return [c for block in message.content if isinstance(block, dict) for c in block.get("citations") or []]


ANTHROPIC_NAMES = {"quote": "cited_text", "start": "start_char_index", "end": "end_char_index"}


@pytest.mark.parametrize("model", MODELS)
def test_langchain_anthropic_keeps_every_citation(server, http, model):
    from langchain_anthropic import ChatAnthropic

    llm = ChatAnthropic(base_url=server.url, api_key="unused", model=model, timeout=120, **SAMPLING)
    cited_answers = 0
    for question in QUESTIONS:
        reply = llm.invoke(question)
        cited = _char_locations(reply)
        whole = sources(cited, **ANTHROPIC_NAMES)
        check_contract(http, whole)
        for c in cited:
            assert c["type"] == "char_location" and c["document_title"]
        if isinstance(reply.content, list):
            for block in reply.content:  # a cited block's text is the claim its quotes support
                assert not block.get("citations") or block["text"].strip()

        chunks = list(llm.stream(question))
        streamed = sum(chunks[1:], chunks[0])
        # Streamed, LangChain keeps the citations but hands the text over as plain strings
        # (it does so unless the request holds tools or citable documents): read them from
        # the dict blocks, the text from .text.
        assert streamed.text == reply.text
        assert sources(_char_locations(streamed), **ANTHROPIC_NAMES) == whole

        # The chat endpoint says and cites the same (the Messages text leaves out its markers).
        chat = ask_chat(http, model, question)
        assert sources(chat["citations"]) == whole and reply.response_metadata["status"] == chat["status"]
        assert re.sub(r"[ \t]*(\[\d+\])+", "", chat["content"]) == reply.text
        if question == UNSUPPORTED_QUESTION:
            assert whole == [] and reply.response_metadata["status"] == "unsupported"
        elif model == "citeqa":
            assert whole
        cited_answers += bool(whole)
    assert cited_answers, f"{model} cited nothing: no citation was read"


# -- the README's examples, as written -------------------------------------------------------------------


def snippets(path: Path, section: str | None = None) -> list[str]:
    """The python code blocks of a file, or of its ``## section`` (up to the next one)."""
    text = path.read_text(encoding="utf-8")
    if section is not None:
        text = text[text.index(f"\n## {section}\n"):]
        text = text[:text.find("\n## ", 4)]
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


@pytest.mark.parametrize("path, section, least", [
    (PROJECT_ROOT / "README.md", "Citations in the clients you use", 4),
    (PROJECT_ROOT / "docs" / "CLIENTS.md", None, 7),
])
def test_the_documented_examples_print_the_citations(server, http, path, section, least):
    quote = ask_chat(http, "citeqa", TROOPS_QUESTION)["citations"][0]["quote"]
    found = snippets(path, section)
    assert len(found) >= least
    for code in found:
        assert "http://127.0.0.1:8000" in code, code  # what `make serve` serves
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(code.replace("http://127.0.0.1:8000", server.url), str(path), "exec"), {})
        assert quote in out.getvalue(), (code, out.getvalue())
