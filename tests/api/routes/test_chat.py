"""OpenAI-compatible chat (api/routes/chat.py): in process for the shapes, then real clients
against a real `citeqa serve`: the official openai client (sync and streaming) and simonw's
`llm` CLI. (The dialect without a server: tests/api/test_openai_chat.py.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from citeqa.api.app import create_app
from citeqa.qa.types import GeneratorError
from tests.support.corpus import SEEDS_DIR, TROOPS_QUESTION, UNSUPPORTED_QUESTION
from tests.support.llm import requires_llm
from tests.support.scripted import ScriptedGenerator
from tests.support.servers import Server

TROOPS_FACT = "11,000 to 12,000"


def user(text: str) -> dict:
    return {"role": "user", "content": text}


def sse_events(response) -> list[dict]:
    """The JSON events of a stream, checking the framing: data lines, [DONE] last."""
    lines = [line for line in response.iter_lines() if line]
    assert all(line.startswith("data: ") for line in lines), lines
    assert lines[-1] == "data: [DONE]"
    return [json.loads(line[6:]) for line in lines[:-1]]


def check_annotations(content: str, message_or_chunk: dict, client) -> None:
    """Each url_citation covers a "[n]" marker of the content, and its URL resolves, through
    the API, to the document version and the cited span."""
    quotes = {c["marker"]: c["quote"] for c in message_or_chunk["citations"]}
    assert len(message_or_chunk["annotations"]) == len(message_or_chunk["citations"])
    for a in message_or_chunk["annotations"]:
        assert a["type"] == "url_citation"
        u = a["url_citation"]
        marker = content[u["start_index"]:u["end_index"]]
        assert marker.startswith("[") and marker.endswith("]")
        url = urlsplit(u["url"])
        resolved = client.get(f"{url.path}?{url.query}")
        assert resolved.status_code == 200, resolved.text
        assert resolved.json()["span"]["text"] == quotes[int(marker[1:-1])]


# -- in process: shapes and errors ----------------------------------------------------------------


def test_non_streaming_answer_carries_citations_and_annotations(client):
    r = client.post("/v1/chat/completions", json={"model": "citeqa", "messages": [user(TROOPS_QUESTION)],
                                                  "temperature": 0.2, "n": 1, "user": "someone"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    message = body["choices"][0]["message"]
    assert message["role"] == "assistant" and TROOPS_FACT in message["content"]
    assert message["status"] == "answered" and message["dropped_citations"] == 0
    for c in message["citations"]:
        doc = client.get(f"/v1/documents/{c['doc_id']}", params={"version": c["doc_version"]}).json()
        assert doc["text"][c["start"]:c["end"]] == c["quote"]
        assert f"[{c['marker']}]" in message["content"]
    check_annotations(message["content"], message, client)
    assert body["citations"] == message["citations"]


def test_streaming_equals_non_streaming(client):
    payload = {"model": "citeqa", "messages": [user(TROOPS_QUESTION)]}
    whole = client.post("/v1/chat/completions", json=payload).json()["choices"][0]["message"]
    with client.stream("POST", "/v1/chat/completions", json={**payload, "stream": True}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = sse_events(r)
    assert events[0]["choices"][0]["delta"]["role"] == "assistant"
    content = "".join(e["choices"][0]["delta"].get("content", "") for e in events)
    streamed = [c for e in events for c in e["choices"][0]["delta"].get("citations", [])]
    final = events[-1]
    assert final["choices"][0]["finish_reason"] == "stop"
    assert content == whole["content"] == final["answer"]
    assert streamed == whole["citations"] == final["citations"]
    assert final["status"] == whole["status"] and final["dropped_citations"] == whole["dropped_citations"]
    check_annotations(content, final, client)


def test_unsupported_question_streams_the_no_answer_sentence(client):
    with client.stream("POST", "/v1/chat/completions", json={"messages": [user(UNSUPPORTED_QUESTION)],
                                                             "stream": True}) as r:
        events = sse_events(r)
    content = "".join(e["choices"][0]["delta"].get("content", "") for e in events)
    assert events[-1]["status"] == "unsupported" and events[-1]["citations"] == []
    assert content == events[-1]["answer"] and "do not contain an answer" in content


@pytest.mark.parametrize("payload, status, code", [
    ({"model": "gpt-17", "messages": [user("hi there")]}, 404, "model_not_found"),
    ({"messages": []}, 422, "invalid_request"),
    ({"messages": [user("What?"), {"role": "assistant", "content": "Yes."}]}, 422, "invalid_request"),
    ({"messages": [user("?!")]}, 422, "invalid_request"),
    ({"messages": [{"role": "wizard", "content": "hi"}]}, 422, "invalid_request"),
    ({"model": "openai", "messages": [user(TROOPS_QUESTION)]}, 503, "generator_unavailable"),
    ({"messages": [user(TROOPS_QUESTION)], "generator_options": {"temperature": 1}}, 422, "invalid_generator_options"),
])
def test_bad_requests_get_clear_errors(client, payload, status, code):
    r = client.post("/v1/chat/completions", json=payload)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code


class _UpstreamTimesOut:
    def __iter__(self):
        raise GeneratorError("timeout", "the upstream took too long")


def test_a_generator_failing_mid_answer_keeps_its_status_in_a_whole_answer(tmp_path, embedder):
    from fastapi.testclient import TestClient

    from citeqa.api.settings import Settings

    failing = ScriptedGenerator()
    failing.pieces = _UpstreamTimesOut()  # read only once the answer is being drafted
    app = create_app(Settings(data_dir=tmp_path / "d", seeds_dir=SEEDS_DIR), embedder, {"failing": failing})
    with TestClient(app) as c:
        r = c.post("/v1/chat/completions", json={"model": "failing", "messages": [user(TROOPS_QUESTION)]})
    assert r.status_code == 504 and r.json()["error"]["message"] == "the upstream took too long", r.text


def test_models_list_citeqa_and_the_available_generators(client):
    ids = [m["id"] for m in client.get("/v1/models").json()["data"]]
    assert ids[0] == "citeqa" and "extractive" in ids and "openai" not in ids  # openai is not configured


def test_content_parts_and_system_messages_are_accepted(client):
    r = client.post("/v1/chat/completions", json={"messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": TROOPS_QUESTION}]}]})
    assert r.status_code == 200 and TROOPS_FACT in r.json()["choices"][0]["message"]["content"]


def test_follow_up_is_answered_about_the_same_subject(client):
    client.post("/v1/documents", json={"doc_id": "crimea", "title": "Crimean War hospitals", "text":
                "Florence Nightingale nursed British soldiers at Scutari. Thousands of soldiers were wounded "
                "at the Battle of Inkerman."})
    first = client.post("/v1/chat/completions", json={"messages": [user("Who is Russia's ambassador to Pyongyang?")]})
    answer = first.json()["choices"][0]["message"]["content"]
    follow = client.post("/v1/chat/completions", json={"messages": [
        user("Who is Russia's ambassador to Pyongyang?"), {"role": "assistant", "content": answer},
        user("Where did he say North Korean educators would teach?")]}).json()["choices"][0]["message"]
    assert "Kazan" in follow["content"] and follow["citations"][0]["doc_id"] == "seed-russia-north-korea"


# -- a client that goes away stops the generation --------------------------------------------------


class SlowGenerator(ScriptedGenerator):
    """Writes a long cited answer slowly and records how far it got."""

    def __init__(self, claim: str, marker: int):
        super().__init__(pieces=[f"{claim} [{marker}]. "] + [f"Troops were sent {i} times [{marker}]. "
                                                              for i in range(200)])
        self.produced = 0

    def stream(self, question, passages, history=(), options=None):
        stream = super().stream(question, passages, history, options)
        inner = stream._pieces

        def slow():
            try:
                for piece in inner:
                    self.produced += 1
                    time.sleep(0.02)
                    yield piece
            finally:
                inner.close()

        stream._pieces = slow()
        return stream


@contextmanager
def uvicorn_serving(app) -> Iterator[str]:
    """``app`` behind a real uvicorn in this process (a real socket a client can drop)."""
    import uvicorn

    from tests.support.servers import free_port

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def slow_app(tmp_path, embedder):
    from citeqa.api.settings import Settings

    slow = SlowGenerator("Kim Jong Un dispatched approximately 11,000 to 12,000 elite troops", 1)
    slow.name = "slow"
    app = create_app(Settings(data_dir=tmp_path / "d", seeds_dir=SEEDS_DIR), embedder, {"slow": slow})
    return app, slow


def _assert_stopped(slow: SlowGenerator) -> None:
    time.sleep(1.0)
    stopped_at = slow.produced
    time.sleep(1.0)
    assert slow.closed == 1, "the generator was not closed"
    assert slow.produced == stopped_at < 150, "the generator kept running after the client left"


def test_a_client_that_disconnects_stops_the_generation(slow_app):
    app, slow = slow_app
    with uvicorn_serving(app) as url, httpx.Client(base_url=url, timeout=30) as c:
        with c.stream("POST", "/v1/chat/completions", json={"model": "slow", "stream": True,
                                                           "messages": [user(TROOPS_QUESTION)]}) as r:
            for line in r.iter_lines():
                if '"content": "Kim' in line or "citations" in line:
                    break  # the first claim arrived; hang up
        _assert_stopped(slow)


def test_a_client_that_leaves_a_whole_answer_stops_it_and_is_counted_as_499(slow_app):
    app, slow = slow_app
    with uvicorn_serving(app) as url, httpx.Client(base_url=url, timeout=30) as c:
        with pytest.raises(httpx.ReadTimeout):  # the whole answer takes 4 s: hang up after 1
            c.post("/v1/chat/completions", json={"model": "slow", "messages": [user(TROOPS_QUESTION)]}, timeout=1)
        _assert_stopped(slow)
        metrics = c.get("/metrics").text
    assert 'citeqa_http_requests_total{method="POST",route="/v1/chat/completions",status="499"} 1.0' in metrics


# -- real clients against a real `citeqa serve` ---------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("chat-serve")
    s = Server(root / "data", root).start()
    yield s
    s.kill_quietly()


def _contract(http: httpx.Client, citations: list) -> None:
    for c in citations:
        doc = http.get(f"/v1/documents/{c['doc_id']}", params={"version": c["doc_version"]}).json()
        assert doc["text"][c["start"]:c["end"]] == c["quote"]


@pytest.mark.slow
@pytest.mark.parametrize("model", ["citeqa", pytest.param("llamacpp", marks=requires_llm)])
def test_official_openai_client_sync_and_streaming(server, model):
    from openai import OpenAI

    client = OpenAI(base_url=f"{server.url}/v1", api_key="not-needed", timeout=120)
    for question in (TROOPS_QUESTION, "Where are wounded Russian soldiers being treated?", UNSUPPORTED_QUESTION):
        messages = [{"role": "user", "content": question}]
        whole = client.chat.completions.create(model=model, messages=messages, max_tokens=96, temperature=0)
        message = whole.choices[0].message
        extra = message.model_extra
        chunks = list(client.chat.completions.create(model=model, messages=messages, max_tokens=96, temperature=0,
                                                     stream=True))
        content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        streamed = [x for c in chunks if c.choices for x in (c.choices[0].delta.model_extra or {}).get("citations", [])]
        final = chunks[-1].model_extra
        with httpx.Client(base_url=server.url) as http:
            _contract(http, extra["citations"])
            _contract(http, streamed)
        assert content == message.content
        assert streamed == extra["citations"] == final["citations"]
        assert final["status"] == extra["status"]
        assert len(message.annotations or []) == len(extra["citations"])
        for a in message.annotations or []:
            assert message.content[a.url_citation.start_index:a.url_citation.end_index].startswith("[")
        if question == TROOPS_QUESTION and model == "citeqa":
            assert TROOPS_FACT in message.content and extra["status"] == "answered"


@pytest.mark.slow
def test_llm_cli_talks_to_citeqa(server, tmp_path):
    """simonw's `llm` CLI, configured for an OpenAI-compatible model, streaming and not."""
    (tmp_path / "extra-openai-models.yaml").write_text(
        f'- model_id: citeqa\n  model_name: citeqa\n  api_base: "{server.url}/v1"\n', encoding="utf-8")
    env = {**os.environ, "LLM_USER_PATH": str(tmp_path), "LLM_LOAD_PLUGINS": "", "OPENAI_API_KEY": "not-needed"}
    llm = Path(sys.executable).parent / "llm"
    for extra in ([], ["--no-stream"]):
        result = subprocess.run([str(llm), "-m", "citeqa", *extra, TROOPS_QUESTION], capture_output=True, text=True,
                                env=env, timeout=120, stdin=subprocess.DEVNULL)
        assert result.returncode == 0, result.stderr
        assert TROOPS_FACT in result.stdout and "[1]" in result.stdout


# -- llamacpp chats whose clients leave: the model stops, the queue empties, threads come back ----


def _threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no Threads: line")


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _settled_threads(server: Server, http: httpx.Client) -> int:
    # anyio retires a worker thread idle for 10 s, but only when the next one is asked for:
    # wait that long, then make a request that runs in a worker thread.
    time.sleep(11)
    assert http.post("/v1/search", json={"query": "troops"}).status_code == 200
    return _threads(server.proc.pid)


@pytest.mark.slow
@requires_llm
def test_llamacpp_chats_whose_clients_leave_stop_at_once_and_free_the_server(tmp_path):
    from tests.support.servers import serving

    payload = {"model": "llamacpp", "messages": [user(TROOPS_QUESTION)], "max_tokens": 256}
    streamed, whole = 10, 3
    with serving(tmp_path) as server, server.client(timeout=120) as http:
        assert http.post("/v1/chat/completions", json=payload).status_code == 200  # loads the model
        baseline = _settled_threads(server, http)

        def leave_after_first_event() -> None:
            with httpx.Client(base_url=server.url, timeout=120) as c:
                with c.stream("POST", "/v1/chat/completions", json={**payload, "stream": True}) as r:
                    assert r.status_code == 200
                    next(line for line in r.iter_lines() if line.startswith("data:"))

        left: list[bool] = []

        def leave_a_whole_answer() -> None:
            # A client that gives up after 0.3 s. On a quiet machine the model may still answer
            # a short question first: then that client did not leave, and is not counted below.
            with httpx.Client(base_url=server.url, timeout=0.3) as c:
                try:
                    c.post("/v1/chat/completions", json=payload)
                    left.append(False)
                except httpx.ReadTimeout:
                    left.append(True)

        clients = [threading.Thread(target=leave_after_first_event) for _ in range(streamed)]
        clients += [threading.Thread(target=leave_a_whole_answer) for _ in range(whole)]
        for t in clients:
            t.start()
        for t in clients:
            t.join(120)
        time.sleep(1.0)  # the generation that was running stops at its next token
        cpu = _cpu_s(server.proc.pid)
        time.sleep(3.0)
        busy = _cpu_s(server.proc.pid) - cpu
        assert busy < 0.5, f"the server used {busy:.1f} s of CPU in 3 s after every client had left"

        # Nothing is queued any more: a new request is the only one on the model.
        t0 = time.monotonic()
        waited = None
        with http.stream("POST", "/v1/chat/completions", json={**payload, "stream": True}) as r:
            lines = []
            for line in r.iter_lines():  # to the end: this client stays
                if waited is None and '"content": "' in line and '"content": ""' not in line:
                    waited = time.monotonic() - t0
                lines.append(line)
        assert [line for line in lines if line][-1] == "data: [DONE]" and waited is not None
        assert waited < 15, f"the first content came after {waited:.1f} s"

        settled = _settled_threads(server, http)
        assert settled <= baseline + 3, f"threads: {baseline} before the load, {settled} after it"
    records = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    cancelled = [r for r in records if r["logger"] == "citeqa.api.conversation" and r.get("disconnected")]
    assert len(cancelled) == streamed, records[-20:]  # each stream that lost its client says so
    closed = [r for r in records if r["logger"] == "citeqa.access" and r.get("status") == 499]
    assert len(left) == whole and any(left), left
    assert len(closed) == left.count(True), records[-20:]  # 499: client closed request


def test_chat_citations_carry_page_and_link_streamed_or_not(client):
    from tests.support.originals import GULLS_FACT, GULLS_PAGE, GULLS_QUESTION, REPORT_URL, upload_originals

    upload_originals(client)
    asked = client.post("/v1/ask", json={"question": GULLS_QUESTION}).json()["citations"]
    payload = {"model": "citeqa", "messages": [user(GULLS_QUESTION)]}
    whole = client.post("/v1/chat/completions", json=payload).json()["choices"][0]["message"]
    with client.stream("POST", "/v1/chat/completions", json={**payload, "stream": True}) as r:
        events = sse_events(r)
    streamed = [c for e in events for c in e["choices"][0]["delta"].get("citations", [])]
    anchors = [[(c["page"], c["end_page"], c["link"]) for c in cs]
               for cs in (asked, whole["citations"], streamed, events[-1]["citations"])]
    assert anchors[0] == anchors[1] == anchors[2] == anchors[3]
    cited = next(c for c in streamed if GULLS_FACT in c["quote"])
    assert (cited["page"], cited["link"]) == (GULLS_PAGE, f"{REPORT_URL}#page={GULLS_PAGE}")
