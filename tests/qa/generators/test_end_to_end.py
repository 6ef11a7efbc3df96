"""Generators end to end, in real processes: `citeqa ask --generator llamacpp`, a `citeqa serve`
whose openai generator talks to llama.cpp's own server, and `citeqa eval --generator openai`."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.support.citations import assert_citation_contract
from tests.support.cli import assert_no_traceback, cli_env, flat, run_cli
from tests.support.corpus import SEEDS_DIR, TROOPS_QUESTION
from tests.support.llm import requires_llm
from tests.support.servers import CITEQA, Server

pytestmark = pytest.mark.slow


@requires_llm
def test_cli_ask_with_the_llamacpp_generator(tmp_path):
    result = run_cli(tmp_path, SEEDS_DIR, "ask", "--generator", "llamacpp", "-o", "max_tokens=80", "--json",
                     TROOPS_QUESTION, "--data-dir", tmp_path / "data")
    assert result.returncode == 0, result.stdout + result.stderr
    body = json.loads(result.stdout)
    assert body["generation"]["generator"] == "llamacpp"
    text = (SEEDS_DIR / "000_f01ac202c5c9e740.txt").read_text(encoding="utf-8")
    for c in body["citations"]:
        assert text[c["start"]:c["end"]] == c["quote"]
    assert (body["status"] == "unsupported") == (not body["citations"])


def test_cli_rejects_an_unknown_generator_clearly(tmp_path):
    result = run_cli(tmp_path, SEEDS_DIR, "ask", "--generator", "gpt-17", TROOPS_QUESTION, "--data-dir", tmp_path / "d")
    assert result.returncode == 2
    assert_no_traceback(result)
    assert "unknown generator 'gpt-17'" in flat(result.stdout) and "extractive" in result.stdout


@pytest.fixture(scope="module")
def openai_server(tmp_path_factory, llama_server):
    root = tmp_path_factory.mktemp("serve-openai")
    server = Server(root / "data", root, env={"CITEQA_OPENAI_BASE_URL": llama_server, "CITEQA_OPENAI_MODEL": "smollm2",
                                              "CITEQA_OPENAI_CONTEXT": "2048"})
    server.start()
    yield server
    server.kill_quietly()


def test_serve_with_openai_pointed_at_a_llama_cpp_server(openai_server):
    with openai_server.client(timeout=120) as c:
        listed = {g["name"]: g for g in c.get("/v1/generators").json()["generators"]}
        assert listed["openai"]["available"] is True
        for question in (TROOPS_QUESTION, "Where are wounded Russian soldiers being treated?"):
            r = c.post("/v1/ask", json={"question": question, "generator": "openai",
                                        "generator_options": {"max_tokens": 96}})
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["generation"]["generator"] == "openai"
            assert_citation_contract(c, body)
            assert (body["status"] == "unsupported") == (not body["citations"])
        # The same question with the extractive default is unaffected by the choice.
        default = c.post("/v1/ask", json={"question": TROOPS_QUESTION}).json()
        assert default["generation"]["generator"] == "extractive" and default["status"] == "answered"


def test_cli_eval_with_the_openai_generator(tmp_path, llama_server):
    """`citeqa eval --generator NAME` works for a generator configured through settings."""
    text = "The Eiffel Tower is 330 metres tall. It was completed in 1889 for the World's Fair."
    doc = {"doc_id": "eiffel", "title": "Eiffel Tower", "text": text}
    rows = [
        {"id": "h", "question": "How tall is the Eiffel Tower?", "answers": ["330 metres"], "documents": [doc],
         "evidence": [{"doc_id": "eiffel", "start": 0, "end": 36}]},
        {"id": "y", "question": "When was the Eiffel Tower completed?", "answers": ["1889"], "documents": [doc],
         "evidence": [{"doc_id": "eiffel", "start": 37, "end": len(text)}]},
    ]
    questions = tmp_path / "q.jsonl"
    questions.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    env = {**cli_env(SEEDS_DIR), "CITEQA_OPENAI_BASE_URL": llama_server, "CITEQA_OPENAI_CONTEXT": "2048"}
    result = subprocess.run([str(CITEQA), "eval", str(questions), "--generator", "openai", "-o", "max_tokens=64",
                             "--out", str(tmp_path / "r.json")], capture_output=True, text=True, encoding="utf-8",
                            env=env, cwd=tmp_path, timeout=300, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert report["questions"] == 2 and report["quote_valid_rate"] == 1.0
    assert report["generator"] == "openai" and report["generate_p50_ms"] > 0
    assert report["config"]["generator"] == "openai"
