"""Prompt templates: plain files with named placeholders, fitted to a context window."""

from __future__ import annotations

from importlib.resources import files

import pytest

from citeqa.qa.prompting import PromptError, built_in_templates, fit_prompt, load_template, parse_template
from citeqa.qa.types import ChatTurn
from tests.contracts.generator import passages_for
from tests.support.corpus import TROOPS_QUESTION


def test_built_in_templates_come_from_the_package_wherever_the_process_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing is looked up relative to the working directory
    assert {"cited_answer", "cited_answer_small"} <= set(built_in_templates())
    for name in built_in_templates():
        t = load_template(name)
        assert t.name == name and t.system and "{question}" in t.user and "{passages}" in t.user
        packaged = files("citeqa.prompts").joinpath(f"{name}.txt").read_text(encoding="utf-8")
        assert t == parse_template(packaged, name)


def test_prompt_templates_are_plain_files_with_named_placeholders(tmp_path):
    custom = tmp_path / "mine.txt"
    custom.write_text("[user]\nQ: {question}\nP: {passages}\nJSON stays: {\"a\": 1} {other}\n", encoding="utf-8")
    t = load_template(custom)
    assert t.system == "" and t.name == "mine"
    assert t.render_user("why?", "[1] x") == "Q: why?\nP: [1] x\nJSON stays: {\"a\": 1} {other}"
    with pytest.raises(PromptError, match="needs \\{passages\\}"):
        parse_template("[user]\nQ: {question}")
    with pytest.raises(PromptError, match="one of: .*cited_answer"):
        load_template("no-such-template")
    with pytest.raises(PromptError, match="no prompt template"):
        load_template(tmp_path / "missing.txt")


def test_fit_prompt_drops_history_then_passages(generator_corpus):
    passages = passages_for(generator_corpus, TROOPS_QUESTION, k=10)
    template = load_template("cited_answer")
    history = [ChatTurn("user", "old question " * 50), ChatTurn("assistant", "old answer " * 50)]
    count = lambda text: len(text) // 3 + 1  # noqa: E731
    full = fit_prompt(template, TROOPS_QUESTION, passages, history, 100_000, count)
    assert full.shown == 10 and len(full.messages) == 4
    assert full.messages[-1]["content"].count("\n[") == 10
    tight = fit_prompt(template, TROOPS_QUESTION, passages, history, full.tokens - 400, count)
    assert tight.shown == 10 and len(tight.messages) == 2  # history went first
    tighter = fit_prompt(template, TROOPS_QUESTION, passages, [], tight.tokens - 150, count)
    assert 1 <= tighter.shown < 10 and tighter.tokens <= tight.tokens - 150
    assert f"[{tighter.shown}]" in tighter.messages[-1]["content"]
    assert f"[{tighter.shown + 1}]" not in tighter.messages[-1]["content"]
    squeezed = fit_prompt(template, "why " * 500, passages, [], 200, count)
    assert squeezed.shown == 1 and squeezed.tokens <= 200
