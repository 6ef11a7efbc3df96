"""Prompt templates rendered into chat messages that fit a context window.

A template is a plain file with ``[system]`` and ``[user]`` sections and the named
placeholders ``{passages}`` and ``{question}``. Fitting drops what matters least first:
the oldest chat turns, then the lowest-ranked passages, and only then cuts text, so the
passages a model sees are always a prefix of the retrieved ones (``shown``).

The built-in templates are package data of ``citeqa.prompts`` (the prompts/ folder), read
through importlib.resources so that an installed wheel finds them as a checkout does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Callable, Sequence

from citeqa.qa.types import ChatTurn, Passage

PROMPTS_PACKAGE = "citeqa.prompts"
PLACEHOLDERS = ("passages", "question")
_SECTION = re.compile(r"^\[(system|user)\][ \t]*$", re.MULTILINE)
_PLACEHOLDER = re.compile(r"\{(passages|question)\}")


class PromptError(ValueError):
    pass


@dataclass(frozen=True)
class PromptTemplate:
    name: str
    system: str
    user: str

    def render_user(self, question: str, passages: str) -> str:
        values = {"question": question, "passages": passages}
        return _PLACEHOLDER.sub(lambda m: values[m.group(1)], self.user)


def load_template(name_or_path: str | Path) -> PromptTemplate:
    """A template by path, or by the name of a built-in one (``cited_answer``)."""
    path = Path(name_or_path)
    if path.is_file():
        return parse_template(path.read_text(encoding="utf-8"), path.stem)
    if not path.suffix:
        built_in = files(PROMPTS_PACKAGE).joinpath(f"{name_or_path}.txt")
        if built_in.is_file():
            return parse_template(built_in.read_text(encoding="utf-8"), path.name)
    known = ", ".join(built_in_templates())
    raise PromptError(f"no prompt template {str(name_or_path)!r} (a path, or one of: {known})")


def built_in_templates() -> list[str]:
    """The names of the templates that ship with citeqa."""
    return sorted(f.name.removesuffix(".txt") for f in files(PROMPTS_PACKAGE).iterdir() if f.name.endswith(".txt"))


def parse_template(text: str, name: str = "template") -> PromptTemplate:
    parts = _SECTION.split(text)
    sections = {parts[i]: parts[i + 1].strip() for i in range(1, len(parts) - 1, 2)}
    if not sections:  # a file with no sections is all user message
        sections = {"user": text.strip()}
    user = sections.get("user", "")
    missing = [p for p in PLACEHOLDERS if "{" + p + "}" not in user]
    if missing:
        raise PromptError(f"prompt {name!r}: the [user] section needs {', '.join('{' + m + '}' for m in missing)}")
    return PromptTemplate(name, sections.get("system", ""), user)


def format_passage(passage: Passage, limit: int | None = None) -> str:
    text = passage.sentence.text if limit is None else passage.sentence.text[:limit]
    return f"[{passage.number}] ({passage.title}) {text}" if passage.title else f"[{passage.number}] {text}"


@dataclass(frozen=True)
class Prompt:
    messages: list[dict[str, str]]
    shown: int  # passages 1..shown are in the prompt
    tokens: int


def fit_prompt(template: PromptTemplate, question: str, passages: Sequence[Passage], history: Sequence[ChatTurn],
               budget: int, count_tokens: Callable[[str], int]) -> Prompt:
    """Messages for a chat model, at most ``budget`` tokens (prompt only; leave room for the
    answer when choosing the budget)."""
    history = [t for t in history if t.content.strip()]
    shown = len(passages)
    text_limit: int | None = None

    def build() -> tuple[list[dict[str, str]], int]:
        block = "\n".join(format_passage(p, text_limit) for p in passages[:shown])
        messages = ([{"role": "system", "content": template.system}] if template.system else [])
        messages += [{"role": t.role, "content": t.content} for t in history]
        messages.append({"role": "user", "content": template.render_user(question, block)})
        # Chat templates add a few tokens of markup per message.
        return messages, sum(count_tokens(m["content"]) + 4 for m in messages)

    messages, tokens = build()
    while tokens > budget:
        if history:
            history.pop(0)
        elif shown > 1:
            shown -= 1
        else:
            # One passage and the question alone are still too long: cut both.
            longest = max(len(question), len(passages[0].sentence.text) if passages else 0)
            if longest <= 16:
                raise PromptError(f"the prompt template alone does not fit a context of {budget} tokens")
            text_limit = max(16, int((text_limit or longest) * 0.7))
            question = question[:max(16, int(len(question) * 0.7))] if len(question) > text_limit else question
        messages, tokens = build()
    return Prompt(messages, shown, tokens)
